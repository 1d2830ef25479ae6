import pytest
import yaml
from snakemake.utils import update_config

from subtask_distill.config import ConfigError, check_layers, config_hash, load_config, validate_config

from .conftest import REPO, run_snakemake, write_config


def test_default_and_test_configs_are_valid():
    for path in (REPO / "config.yaml", REPO / "configs" / "test.yaml"):
        load_config(path)


OVERLAYS = [
    ("config.yaml", "configs/embedded_full.yaml"),
    *(("config.yaml", f"configs/fidelity/{path.name}") for path in sorted((REPO / "configs" / "fidelity").glob("*.yaml"))),
    ("configs/paper.yaml", "configs/paper_text.yaml"),
]


@pytest.mark.parametrize("base,overlay", OVERLAYS, ids=[overlay for _, overlay in OVERLAYS])
def test_every_overlay_merged_into_its_base_is_a_valid_study_of_its_own(base, overlay):
    config = yaml.safe_load((REPO / base).read_text())
    changes = yaml.safe_load((REPO / overlay).read_text())
    update_config(config, changes)  # as a second --configfile does
    check_layers(validate_config(config))
    assert config["study"] == changes["study"] != yaml.safe_load((REPO / base).read_text())["study"]


def test_defaults_are_filled_in(test_config):
    assert test_config["training"]["temperature"] == 4.0
    assert test_config["teacher_training"]["weight_decay"] == 0.01


BAD_VALUES = [
    ("unknown top-level key", lambda c: c.update(learning_rate=0.1), "learning_rate"),
    ("unknown nested key", lambda c: c["training"].update(epoch=3), "training"),
    ("rho above 1", lambda c: c.update(rhos=[0, 1.5]), "rhos[1]"),
    ("negative rho", lambda c: c.update(rhos=[-0.5]), "rhos[0]"),
    ("empty seed list", lambda c: c.update(seeds=[]), "seeds"),
    ("negative epochs", lambda c: c["training"].update(epochs=-1), "training.epochs"),
    ("zero batch size", lambda c: c["training"].update(batch_size=0), "training.batch_size"),
    ("string learning rate", lambda c: c["training"].update(lr="fast"), "training.lr"),
    ("validation fraction of 1", lambda c: c["data"].update(validation_fraction=1.0), "data.validation_fraction"),
    ("missing section", lambda c: c.pop("training"), "training"),
    ("bad study name", lambda c: c.update(study="my study"), "study"),
    ("unknown method", lambda c: c["methods"].update(dino={}), "methods.dino"),
    ("unknown architecture", lambda c: c["pairs"]["embedded"]["student"].update(arch="resnet9000"),
     "pairs.embedded.student.arch"),
    ("unknown method option", lambda c: c["methods"].update(subdistill={"temperature": 2}), "methods.subdistill.temperature"),
    ("unpaired layers", lambda c: c["pairs"]["embedded"]["student"].update(layers=["stage1"]), "pairs.embedded"),
    ("subtask class out of range", lambda c: c["data"].update(subtask_classes=[0, 1, 2, 3, 12]),
     "data.subtask_classes[4]"),
    ("unknown digit style", lambda c: c["data"]["artifact"].update(digit={"style": "glow"}), "data.artifact.digit.style"),
    ("unknown artifact", lambda c: c["data"]["artifact"].update(kind="sticker"), "data.artifact.kind"),
    ("unknown artifact option", lambda c: c["data"]["artifact"].update(mark={"colour": "red"}), "data.artifact.mark.colour"),
    ("options of an unknown kind", lambda c: c["data"]["artifact"].update(sticker={}), "data.artifact.sticker"),
    ("target class out of range", lambda c: c["data"]["artifact"].update(kind="watermark", target_class=7),
     "data.artifact.target_class"),
    ("unknown selection rule", lambda c: c.update(selection=["oracle", "test"]), "selection[1]"),
    ("layer subset past the pair's layers", lambda c: c.update(layer_subsets=[[1, 5]]), "layer_subsets"),
    ("biased teacher out of range", lambda c: c["teacher_training"].update(artifact_rho=1.5), "teacher_training.artifact_rho"),
    ("unknown validation split", lambda c: c["data"].update(validation_split="by_writer"), "data.validation_split"),
    ("bad option value", lambda c: c["methods"].update(subdistill={"student_scaling": "whiten"}),
     "methods.subdistill.student_scaling"),
    ("non-boolean option", lambda c: c["methods"].update(vid={"learn_variance": "yes"}), "methods.vid.learn_variance"),
    ("bank scope of 0.4.0", lambda c: c["training"].update(bank=True), "training.bank"),
    ("householder with weight decay", lambda c: c["training"].update(weight_decay=0.01), "methods.vkd.orthogonal_map"),
]


@pytest.mark.parametrize("label,mutate,key", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_are_rejected_naming_the_key(config, label, mutate, key):
    mutate(config)
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert key in str(error.value)


def test_layer_check_accepts_every_shipped_config():
    for path in (REPO / "config.yaml", REPO / "configs" / "test.yaml", REPO / "configs" / "paper.yaml"):
        check_layers(load_config(path))


PAPER_LAYER_TYPOS = [
    ("wrn101_to_mbnv4", "student", 1, "blocks.2.9", "closest: blocks.2.5"),
    ("resnet18_to_resnet18s", "teacher", 0, "layer_1", "closest: layer1"),
    ("vitb16_to_effformerv2", "student", 3, "head", "gives no feature map"),
]


@pytest.mark.parametrize("pair,role,index,layer,hint", PAPER_LAYER_TYPOS, ids=[t[3] for t in PAPER_LAYER_TYPOS])
def test_a_layer_the_architecture_lacks_is_named_with_the_closest_ones(pair, role, index, layer, hint):
    config = load_config(REPO / "configs" / "paper.yaml")
    config["pairs"][pair][role]["layers"][index] = layer
    with pytest.raises(ConfigError) as error:
        check_layers(config)
    assert f"pairs.{pair}.{role}.layers[{index}]: {layer!r}" in str(error.value) and hint in str(error.value)


def test_a_student_layer_wider_than_its_teacher_layer_is_refused_for_subdistill(config):
    config["pairs"]["embedded"]["teacher"]["layers"][0] = "stem"  # 16 channels for the student's 8: fine
    check_layers(config)
    config["pairs"]["embedded"]["student"]["layers"][0] = "stage4"  # 64 channels against the teacher stem's 16
    with pytest.raises(ConfigError, match=r"pairs.embedded: subdistill fits 64 directions of teacher layer stem"):
        check_layers(config)


def test_load_config_reports_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_inline_section_is_validated():
    assert load_config('{"training": {"epochs": 3, "batch_size": 8, "lr": 0.1}}')["training"]["lr_step"] == 25
    with pytest.raises(ConfigError, match="training.epochs"):
        load_config('{"training": {"epochs": 0, "batch_size": 8, "lr": 0.1}}')


def test_config_hash_is_stable_and_sensitive(config):
    same = yaml.safe_load(yaml.safe_dump(config))
    assert config_hash(config) == config_hash(same)
    same["training"]["lr"] = 0.5
    assert config_hash(config) != config_hash(same)


@pytest.mark.slow
@pytest.mark.parametrize(
    "mutate,key",
    [
        (lambda c: c.update(rhos=[0, 2]), "rhos"),
        (lambda c: c["methods"].update(dino={}), "methods.dino"),
        (lambda c: c["pairs"]["embedded"]["student"]["layers"].__setitem__(2, "stage_3"),
         "pairs.embedded.student.layers[2]: 'stage_3' is not a module of embedded_cnn; closest: stage3"),
    ],
    ids=["schema", "registry", "layer"],
)
def test_workflow_stops_before_any_job_on_a_bad_config(workdir, config, mutate, key):
    mutate(config)
    result = run_snakemake(workdir, "-n", configfile=write_config(workdir / "bad.yaml", config))
    assert result.returncode != 0
    assert key in result.stdout + result.stderr
    assert not (workdir / "results").exists()
