"""How the command line is put together: one module per command, defaults from the library."""

import ast
import pathlib

import keras
import pytest

import keras_ddpm as kd
from keras_ddpm.cli import build_parser, main, options
from keras_ddpm.cli.main import in_flags

CLI = pathlib.Path(kd.__file__).parent / "cli"


def cli_imports(path):
    """`(module, at top level)` for each `keras_ddpm.cli` module `path` imports."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        for module in modules:
            if (
                module.startswith("keras_ddpm.cli.")
                and (CLI / (module.split(".")[2] + ".py")).is_file()
            ):
                found.append((module.split(".")[2], id(node) in top))
    return found


def test_cli_modules_import_each_other_without_a_cycle_and_only_at_top_level():
    graph = {}
    for path in sorted(CLI.glob("*.py")):
        imports = cli_imports(path)
        assert all(top for _, top in imports), f"{path.name} imports cli modules late"
        graph[path.stem] = {name for name, _ in imports}

    done, active = set(), []

    def visit(name):
        assert name not in active, f"import cycle: {' -> '.join(active + [name])}"
        if name in done:
            return
        active.append(name)
        for other in graph.get(name, ()):
            visit(other)
        active.pop()
        done.add(name)

    for name in graph:
        visit(name)
    assert graph["options"] == set()
    for command in (
        "train",
        "sample",
        "reconstruct",
        "inpaint",
        "interpolate",
        "evaluate",
        "serve",
        "info",
    ):
        assert graph[command] <= {"options"}, command


def subcommand(name):
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    return commands.choices[name]


def test_every_train_flag_is_an_argument_of_the_library_function_and_back():
    dests = {
        action.dest
        for action in subcommand("train")._actions
        if action.dest not in ("help", "config", "backend")
    }
    assert dests == set(kd.training.DEFAULTS)


def record_train(monkeypatch):
    """Replace `kd.training.train` by a recorder; returns the list of its calls' arguments."""
    calls = []

    def fake_train(**kwargs):
        calls.append(kwargs)
        return kd.training.TrainingResult(None, {}, kwargs.get("output_dir"))

    monkeypatch.setattr(kd.training, "train", fake_train)
    return calls


def test_train_passes_only_what_was_given(monkeypatch, tmp_path):
    calls = record_train(monkeypatch)
    assert main(["train"]) == 0
    assert calls[-1] == {"resume": False}  # every other value: the library's default

    config = tmp_path / "run.toml"
    config.write_text('out = "from_file"\nema = 0.9\nepochs = 3\ndata_dir = "d"\n')
    args = ["train", "--config", str(config), "--epochs", "5", "--widths", "8", "16"]
    assert main(args + ["--out", "flag", "--devices", "2"]) == 0
    assert calls[-1] == {
        "output_dir": "flag",
        "ema_momentum": 0.9,
        "epochs": 5,
        "data_dir": "d",
        "widths": [8, 16],
        "devices": 2,
        "resume": False,
    }


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--min-snr-gamma", "5"], {"min_snr_gamma": 5.0}),
        (["--min-snr-gamma", "none"], {"min_snr_gamma": None}),
        (["--zero-init-residual", "on"], {"zero_init_residual": True}),
        (["--zero-init-residual", "off"], {"zero_init_residual": False}),
        (["--zero-init-attention", "on"], {"zero_init_attention": True}),
        (["--scale-shift", "on"], {"scale_shift": True}),
        (["--beta-2", "0.95"], {"beta_2": 0.95}),
        (["--weight-decay", "0"], {"weight_decay": 0.0}),
        (["--global-clipnorm", "1"], {"global_clipnorm": 1.0}),
        (["--global-clipnorm", "none"], {"global_clipnorm": None}),
        (["--patch-size", "2"], {"patch_size": 2}),
        (["--block-depth", "auto"], {"block_depth": "auto"}),
        (["--block-depth", "3"], {"block_depth": 3}),
        (["--block-depth", "1", "2", "2"], {"block_depth": [1, 2, 2]}),
        (["--intra-op-threads", "auto"], {"intra_op_threads": "auto"}),
        (["--intra-op-threads", "none"], {"intra_op_threads": None}),
        (["--intra-op-threads", "3"], {"intra_op_threads": 3}),
        (["--overwrite"], {"overwrite": True}),
    ],
)
def test_train_flags_switch_options_on_and_off(monkeypatch, argv, expected):
    calls = record_train(monkeypatch)
    assert main(["train", *argv]) == 0
    assert calls[-1] == {**expected, "resume": False}


def test_a_config_file_sets_one_block_depth_per_level(monkeypatch, tmp_path):
    calls = record_train(monkeypatch)
    config = tmp_path / "run.toml"
    config.write_text("block_depth = [1, 2, 2]\n")
    assert main(["train", "--config", str(config)]) == 0
    assert calls[-1] == {"block_depth": [1, 2, 2], "resume": False}


def test_a_block_depth_per_level_of_other_widths_is_a_flag_error(capsys, tmp_path):
    argv = ["train", "--out", str(tmp_path), "--widths", "8", "16"]
    assert main([*argv, "--block-depth", "1", "2", "2"]) == 2
    assert (
        "--block-depth must be 'auto', an int >= 1 or a sequence of one such "
        "int per level (2 levels), got [1, 2, 2]." in capsys.readouterr().err
    )


def test_a_config_file_can_switch_min_snr_off(monkeypatch, tmp_path):
    calls = record_train(monkeypatch)
    config = tmp_path / "run.toml"
    config.write_text('min_snr_gamma = "none"\n')
    assert main(["train", "--config", str(config)]) == 0
    assert calls[-1] == {"min_snr_gamma": None, "resume": False}


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["--min-snr-gamma", "0"],
            "expected a positive, finite float or none, got '0'",
        ),
        (["--min-snr-gamma", "off"], "expected a positive, finite float or none"),
        (["--zero-init-residual", "yes"], "expected on or off, got 'yes'"),
        (["--block-depth", "0"], "expected a positive int or auto, got '0'"),
        (["--block-depth", "two"], "expected a positive int or auto, got 'two'"),
        (
            ["--intra-op-threads", "0"],
            "expected auto, none or a positive int, got '0'",
        ),
        (
            ["--intra-op-threads", "all"],
            "expected auto, none or a positive int, got 'all'",
        ),
    ],
)
def test_bad_on_off_and_gamma_values_are_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "status,code,stream,text",
    [
        ("non_finite", 1, "err", "keras-ddpm train: error: loss became nan"),
        ("interrupted", 130, "out", "Saved ck.keras; run again with --resume"),
    ],
)
def test_train_exit_status(monkeypatch, capsys, status, code, stream, text):
    result = kd.training.TrainingResult(
        None, {}, "x", status=status, message="loss became nan", checkpoint="ck.keras"
    )
    monkeypatch.setattr(kd.training, "train", lambda **kwargs: result)
    assert main(["train"]) == code
    assert text in getattr(capsys.readouterr(), stream)


def test_unknown_config_keys_and_flag_only_settings_are_refused(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("output_dir = 'x'\nresume = true\n")
    assert main(["train", "--config", str(config)]) == 2
    assert f"unknown keys in {config}: output_dir, resume" in capsys.readouterr().err


def test_library_errors_are_translated_to_flags():
    def translate(message):
        return in_flags(build_parser(), "train", message)

    assert (
        translate("`batch_size` 8 must be a multiple of `devices` 3.")
        == "--batch-size 8 must be a multiple of --devices 3."
    )
    assert translate("`output_dir` and `ema_momentum`") == "--out and --ema"
    assert translate("use fewer `widths`; `count` is fine") == (
        "use fewer --widths; `count` is fine"
    )


def test_choice_lists_come_from_the_registries(monkeypatch):
    monkeypatch.setitem(kd.samplers._REGISTRY.names, "toy", kd.samplers.DDIMSampler)
    monkeypatch.setitem(
        kd.schedules._REGISTRY.names, "toy", kd.schedules.LinearSchedule
    )
    for command in ("train", "sample", "reconstruct", "evaluate"):
        help_text = subcommand(command).format_help()
        assert "ddim,ddpm,dpm_solver,euler,heun,toy" in help_text, command
    # Interpolation needs a deterministic sampler: DDPM is not offered.
    assert "{ddim,dpm_solver,euler,heun,toy}" in subcommand("interpolate").format_help()
    assert "cosine,linear,sigmoid,toy" in subcommand("train").format_help()
    assert "{epsilon,x0,v}" in subcommand("train").format_help()


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--sampler", "ddim", "--eta", "0.5"], {"name": "ddim", "eta": 0.5}),
        (
            ["--sampler", "dpm_solver", "--order", "3"],
            {"name": "dpm_solver", "order": 3},
        ),
        (
            ["--sampler", "heun", "--spacing", "trailing"],
            {"name": "heun", "spacing": "trailing"},
        ),
        (["--sampler", "euler"], {"name": "euler"}),
    ],
)
def test_sampling_options_reach_the_sampler_that_takes_them(argv, expected):
    args = build_parser().parse_args(["sample", "--model", "m.keras", *argv])
    config = options.sampler_config(args)
    assert config == expected
    assert kd.samplers.get(config)  # a config the registry takes


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--sampler", "ddpm", "--order", "2"], "--order is an option of dpm_solver"),
        (["--sampler", "heun", "--eta", "1"], "--eta is an option of ddim"),
    ],
)
def test_sampling_options_for_another_sampler_are_usage_errors(argv, message):
    args = build_parser().parse_args(["sample", "--model", "m.keras", *argv])
    with pytest.raises(options.UsageError, match=message):
        options.sampler_config(args)


def test_a_new_run_into_a_finished_run_names_the_flags_and_keeps_its_files(
    tmp_path, capsys
):
    (tmp_path / "model.keras").write_bytes(b"a finished run's model")
    assert main(["train", "--out", str(tmp_path), "--epochs", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(
        "already holds a run (model.keras): continue it with --resume, replace it "
        "with --overwrite, or choose another --out."
    )
    assert len(error.splitlines()) == 1
    assert (tmp_path / "model.keras").read_bytes() == b"a finished run's model"


def test_a_backend_that_is_not_installed_is_one_line(monkeypatch, capsys):
    import importlib.util

    other = next(
        b for b in ("jax", "torch", "tensorflow") if b != keras.backend.backend()
    )
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == other else find_spec(name, *args),
    )

    def execv(*args):
        raise AssertionError("re-executed with a backend that is not installed")

    monkeypatch.setattr(options.os, "execv", execv)
    assert main(["info", "--backend", other]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"keras-ddpm info: error: --backend {other}: {other} is not installed "
        f"(pip install 'keras-ddpm[{other}]')"
    )
