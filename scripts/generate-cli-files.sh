#!/usr/bin/env bash
# Regenerates the files rendered from the command-line table (src/cli/spec.rs)
# and the config schema: shell completions, the man page, the JSON Schema.
# A test (tests/it_cli_help.rs) fails when a committed copy is out of date.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet
bin=target/debug/autopilot
mkdir -p completions man
"$bin" completions bash > completions/autopilot.bash
"$bin" completions zsh > completions/_autopilot
"$bin" completions fish > completions/autopilot.fish
"$bin" man > man/autopilot.1
"$bin" schema > autopilot.schema.json
echo "regenerated completions/, man/autopilot.1 and autopilot.schema.json"
