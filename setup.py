"""Package set-up from nbdev's template, read from settings.ini (fixed for current setuptools: SPDX license, no license classifier).

The wheel also carries the repository's `data/` folder (policies, prompt and judge templates, jailbreak templates, smoke prompts,
the papers' reference tables) as `aidsafe_nb/data` and the study notebooks `nbs/study/` as `aidsafe_nb/study_nbs`, so an installed
package runs outside a checkout (`aidsafe_nb.config.data_dir` finds the installed copy). Everything under those folders is
included, whatever its name, so files other notebooks add later travel too.
"""
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()
min_python = cfg['min_python']
requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
console_scripts = [s for s in cfg.get('console_scripts', '').split() if s]
lib = cfg['lib_name']
# folders of the repository that install as data-only subpackages of the library (no __init__.py: package data only)
data_packages = {f'{lib}.data': 'data', f'{lib}.study_nbs': 'nbs/study'}

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    license='Apache-2.0',
    license_files=['LICENSE'],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=[lib, lib + '.*']) + list(data_packages),
    package_dir={k: v for k, v in data_packages.items()},
    package_data={k: ['**/*'] for k in data_packages},
    exclude_package_data={k: ['**/__pycache__/*', '**/*.pyc', '**/.ipynb_checkpoints/*', '**/.last_checked'] for k in data_packages},
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f'{cfg["lib_name"]}={cfg["lib_name"]}._modidx:d']},
)
