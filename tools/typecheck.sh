#!/usr/bin/env bash
# mypy --strict on saa_lab, parsers and hl7 as they install (saa_lab.parsers,
# saa_lab.hl7). mypy cannot remap package names, so we lay out a tree of symlinks
# with the installed shape and check that; errors still point at real files.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=.typecheck
rm -rf "$stage"
mkdir -p "$stage/saa_lab"
for entry in saa_lab/*; do
  ln -s "../../$entry" "$stage/saa_lab/$(basename "$entry")"
done
ln -s ../../parsers "$stage/saa_lab/parsers"
ln -s ../../hl7 "$stage/saa_lab/hl7"
exec "${PYTHON:-python}" -m mypy --strict --config-file pyproject.toml "$stage/saa_lab" "$@"
