# Sourced by the scripts: where the cache lives and which tools the kernel build
# uses. Keeps rustup's rustc (no library sources) away from the kernel build.
FERROFS_CACHE=${FERROFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrofs}
BINDGEN_VERSION=0.71.1
VIRTME_NG_VERSION=1.42
FERROFS_BINDGEN=$FERROFS_CACHE/cargo/bin/bindgen
KERNEL_VERSION_PKG=6.12
ferrofs_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel_fragment=$ferrofs_root/scripts/kernel.config
# The kernel build key: source package version + fragment contents.
kernel_src_version() { dpkg-query -W -f='${Version}' "linux-source-$KERNEL_VERSION_PKG" 2>/dev/null; }
kernel_key() { printf '%s %s' "$(kernel_src_version)" "$(sha256sum <"$kernel_fragment" | cut -c1-16)" | sha256sum | cut -c1-16; }
kernel_dir() { printf '%s/linux-%s-%s' "$FERROFS_CACHE" "$(kernel_src_version)" "$(kernel_key)"; }
kmake_args=(LLVM=-19 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc HOSTRUSTC=/usr/bin/rustc BINDGEN="$FERROFS_BINDGEN")
kernel_path() { printf '%s' "/usr/lib/llvm-19/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; }
mkdir -p "$FERROFS_CACHE"
# rustup's cargo for the userspace crates, even when a login profile did not
# put it on PATH (as in CI's plain environment).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  PATH=$HOME/.cargo/bin:$PATH
  export PATH
fi
