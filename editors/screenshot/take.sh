#!/usr/bin/env bash
# Screenshot of mdl-lsp in a real editor for docs/editors.md: Neovim (with editors/nvim)
# in an xterm under Xvfb, showing a diagnostic and a hover, captured with ImageMagick.
#   apt-get install neovim xvfb xterm imagemagick
#   editors/screenshot/take.sh [out.png]      (default docs/images/nvim-hover-diagnostics.png)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/docs/images/nvim-hover-diagnostics.png}"
display=":${MDL_SHOT_DISPLAY:-87}"
work="$(mktemp -d)"
mkdir "$work/examples"
pids=()
cleanup() {
    # xterm before the X server it draws on.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# examples/lenet.mdl with a 3x3 second convolution: fc1 no longer gets its 400 inputs.
sed 's/let conv2 = nn.Conv2d\[6, 16, 5\]/let conv2 = nn.Conv2d[6, 16, 3]/' \
    "$root/examples/lenet.mdl" > "$work/examples/lenet.mdl"
grep -q 'Conv2d\[6, 16, 3\]' "$work/examples/lenet.mdl"

Xvfb "$display" -screen 0 1700x560x24 -nolisten tcp &
pids+=($!)
for _ in $(seq 100); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done

cd "$work"
DISPLAY="$display" MDL_SHOT_READY="$work/ready" MDL_LSP_CMD="${MDL_LSP_CMD:-mdl-lsp}" \
    xterm -geometry 172x25+0+0 -fa 'DejaVu Sans Mono' -fs 11 -bg '#1c1c1c' -fg '#d0d0d0' \
    -xrm 'XTerm*termName: xterm-256color' -xrm 'XTerm*borderWidth: 0' -xrm 'XTerm*internalBorder: 8' \
    -e nvim --clean --cmd "set rtp^=$root/editors/nvim" -c "luafile $here/hover.lua" examples/lenet.mdl &
pids+=($!)

for _ in $(seq 300); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || { echo "Neovim never showed the hover" >&2; exit 1; }
sleep 0.5  # let xterm paint the last frame
import -display "$display" -window root -trim +repage -colors 64 "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
