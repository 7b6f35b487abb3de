# Sourced by the scripts that run on a lent GPU machine (gpu_check.sh, gpu_sweep.sh), never run alone:
# such a machine has its own PyTorch but no network, and may lack pydantic (and pytest). This installs, from
# gpu-wheels/ (`make gpu-wheels` fills it on a machine with network before the tree is sent), only the
# distributions whose module this Python lacks, without dependencies, so nothing it already has is shadowed,
# into a fresh temporary directory put on PYTHONPATH. Needs ROOT (the repository) and PYTHON.

# shellcheck shell=bash
MISSING=$("$PYTHON" - <<'PY'
import importlib.util
wanted = {"pydantic": "pydantic", "pydantic_core": "pydantic-core", "annotated_types": "annotated-types",
          "typing_inspection": "typing-inspection", "typing_extensions": "typing-extensions", "pytest": "pytest",
          "pluggy": "pluggy", "iniconfig": "iniconfig", "packaging": "packaging", "pygments": "pygments"}
print(" ".join(dist for module, dist in wanted.items() if importlib.util.find_spec(module) is None))
PY
)
if [[ -n "$MISSING" ]]; then
    WHEELS="$ROOT/gpu-wheels"
    if [[ ! -d "$WHEELS" ]]; then
        echo "$(basename "$0"): this Python lacks $MISSING and $WHEELS is absent; run 'make gpu-wheels' where there is network, then send the tree" >&2
        exit 2
    fi
    PACKAGES=$(mktemp -d)
    # shellcheck disable=SC2086  # one argument per distribution
    "$PYTHON" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" --target "$PACKAGES/last" $MISSING
    export PYTHONPATH="$PYTHONPATH:$PACKAGES/last"
    # pydantic may need a newer typing_extensions than this Python has: then, and only then, the wheel's
    # (newer, backward compatible) copy comes first.
    if ! "$PYTHON" -c "import pydantic" 2>/dev/null; then
        "$PYTHON" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" --target "$PACKAGES/first" \
            typing-extensions
        export PYTHONPATH="$PACKAGES/first:$PYTHONPATH"
    fi
fi
