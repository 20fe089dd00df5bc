#!/usr/bin/env bash
# Regenerates the guide's tables and figures from the code, then renders the figures to SVG.
#   scripts/gen_docs.sh            (needs graphviz: apt-get install -y graphviz)
# tests/docs.rs checks the tables and the .dot sources; the SVGs are rendered from those sources.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo run --release --quiet --example gen_docs
if ! command -v dot >/dev/null; then
  echo "graphviz's dot is not installed (apt-get install -y graphviz); the SVGs were not rendered" >&2
  exit 1
fi
for source in docs/guide/figures/*.dot; do
  dot -Tsvg "$source" -o "${source%.dot}.svg"
done
echo "rendered $(ls docs/guide/figures/*.svg | wc -l) figures in docs/guide/figures/"
