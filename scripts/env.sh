# Sourced by the scripts: where the cache lives and which tools the kernel build
# uses. Keeps rustup's rustc (no library sources) away from the kernel build.
FERROFS_CACHE=${FERROFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrofs}
BINDGEN_VERSION=0.71.1
VIRTME_NG_VERSION=1.42
FERROFS_BINDGEN=$FERROFS_CACHE/cargo/bin/bindgen
KERNEL_VERSION_PKG=6.12
ferrofs_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel_fragment=$ferrofs_root/scripts/kernel.config
# Two kernel flavours from the same fragment: "debug" (the fragment as it
# is: KASAN, lockdep; make check's) and "fast" (the fragment plus the small
# overlay kernel-fast.config, which drops the debug checkers; for bench and
# fstests). Each is cached in its own directory under its own key.
kernel_fast_fragment=$ferrofs_root/scripts/kernel-fast.config
kernel_flavours="debug fast"
kernel_flavour_ok() { case "${1:-}" in debug|fast) return 0 ;; *) return 1 ;; esac; }
# The fragments a flavour merges over tinyconfig, in order (later wins).
kernel_fragments() { # [flavour]
  case "${1:-debug}" in
    debug) printf '%s\n' "$kernel_fragment" ;;
    fast) printf '%s\n' "$kernel_fragment" "$kernel_fast_fragment" ;;
  esac
}
# The kernel build key: source package version + fragment contents. The
# debug key is computed exactly as before the flavours existed, so its
# cached build stays valid; the fast key also covers the overlay.
kernel_src_version() { dpkg-query -W -f='${Version}' "linux-source-$KERNEL_VERSION_PKG" 2>/dev/null; }
fragment_hash() { sha256sum <"$1" | cut -c1-16; }
kernel_key() { # [flavour]
  case "${1:-debug}" in
    debug) printf '%s %s' "$(kernel_src_version)" "$(fragment_hash "$kernel_fragment")" ;;
    fast) printf '%s %s fast %s' "$(kernel_src_version)" "$(fragment_hash "$kernel_fragment")" "$(fragment_hash "$kernel_fast_fragment")" ;;
  esac | sha256sum | cut -c1-16
}
# debug: linux-<version>-<key>; fast: linux-fast-<version>-<key>.
kernel_dir_prefix() { # [flavour]
  case "${1:-debug}" in debug) printf '%s/linux-' "$FERROFS_CACHE" ;; *) printf '%s/linux-%s-' "$FERROFS_CACHE" "$1" ;; esac
}
kernel_dir() { printf '%s%s-%s' "$(kernel_dir_prefix "${1:-debug}")" "$(kernel_src_version)" "$(kernel_key "${1:-debug}")"; }
# Which flavour a cached linux-* directory holds (by its name).
kernel_dir_flavour() { case "${1##*/}" in linux-fast-*) echo fast ;; *) echo debug ;; esac; }
# Where the module built for a flavour lands: the debug one where it always
# has (make check, tests/vm and KDIR builds use it), the others under build/.
module_path() { # [flavour]
  case "${1:-debug}" in debug) printf '%s/ferrofs.ko' "$ferrofs_root" ;; *) printf '%s/build/%s/ferrofs.ko' "$ferrofs_root" "$1" ;; esac
}
kmake_args=(LLVM=-19 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc HOSTRUSTC=/usr/bin/rustc BINDGEN="$FERROFS_BINDGEN")
kernel_path() { printf '%s' "/usr/lib/llvm-19/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; }
mkdir -p "$FERROFS_CACHE"
# rustup's cargo for the userspace crates, even when a login profile did not
# put it on PATH (as in CI's plain environment).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  PATH=$HOME/.cargo/bin:$PATH
  export PATH
fi
