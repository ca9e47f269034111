"""Run by the SERVING environment's Python (`.venv-vllm/bin/python`, not the study's): what vLLM says about itself, without a GPU.

Prints one JSON object: vLLM's and torch's versions, the `vllm serve --help=all` text, and for every command given on stdin (one
JSON list of `vllm serve ...` argument lists) what vLLM's own CLI parser made of it: the same parser `vllm` builds in
`vllm.entrypoints.cli.main.main`, then the subcommand's `validate`, stopping before `dispatch_function` starts an engine.
A CUDA build cannot infer a device on a machine without a GPU, so the caller sets VLLM_TARGET_DEVICE=cpu: argument parsing
only, no kernel runs."""
import contextlib, io, json, sys

def parser_and_cmds():
    "vLLM's top-level CLI parser with every subcommand, as `vllm` itself builds it."
    import importlib.metadata
    import vllm.entrypoints.cli.serve as serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser
    parser = FlexibleArgumentParser(description='vLLM CLI')
    parser.add_argument('-v', '--version', action='version', version=importlib.metadata.version('vllm'))
    subparsers, cmds = parser.add_subparsers(required=False, dest='subparser'), {}
    for cmd in serve.cmd_init():
        cmd.subparser_init(subparsers).set_defaults(dispatch_function=cmd.cmd)
        cmds[cmd.name] = cmd
    return parser, cmds

def parse(parser, cmds, argv: list[str]) -> dict:
    "What `vllm <argv>` would run with: the parsed and validated serve arguments, or the parser's error."
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err): args = parser.parse_args(argv)
        cmds[args.subparser].validate(args)
    except SystemExit as e: return dict(ok=False, error=err.getvalue().strip()[-600:] or f'exit {e.code}')
    except Exception as e: return dict(ok=False, error=f'{type(e).__name__}: {e}'[:600])
    mods = [dict(name=m.name, path=m.path) for m in (args.lora_modules or [])]
    return dict(ok=True, model=args.model_tag, served_model_name=args.served_model_name, enable_lora=args.enable_lora,
                max_lora_rank=args.max_lora_rank, max_loras=args.max_loras, lora_modules=mods, port=args.port)

def main():
    import torch, vllm
    parser, cmds = parser_and_cmds()
    helps = io.StringIO()
    with contextlib.redirect_stdout(helps), contextlib.suppress(SystemExit): parser.parse_args(['serve', '--help=all'])
    commands = json.loads(sys.stdin.read() or '[]')
    print(json.dumps(dict(vllm=vllm.__version__, torch=torch.__version__, serve_help=helps.getvalue(),
                          parsed=[parse(parser, cmds, argv) for argv in commands])))

if __name__ == '__main__': main()
