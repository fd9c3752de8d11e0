#!/usr/bin/env bash
# build.sh OUTDIR builds the example Wasm functions into OUTDIR:
#
#   hello-go-reactor.wasm  Go, the http ABI (GOOS=wasip1, -buildmode=c-shared)
#   hello-go-wagi.wasm     Go, the wagi ABI (a WASI command)
#   hello-c-wagi.wasm      C with clang and wasi-libc, the wagi ABI
#   hello-wat.wasm         WAT with wabt's wat2wasm, the wagi ABI
#   header-filter.wasm     a proxy-wasm gateway filter (Go SDK), for wisp filter create
#
# It needs Go; clang, wasm-ld, wasi-libc and wat2wasm come from Debian's
# packages, which it installs with apt-get when they are missing and it
# runs as root (otherwise it says what to install). Set WASI_SYSROOT to use
# a wasi-libc that is not where Debian puts it.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
GO=${GO:-go}

# Debian packages that provide the C and WAT toolchains.
packages=(clang lld wasi-libc libclang-rt-dev-wasm32 wabt)

have_tools() {
	command -v clang >/dev/null && command -v wasm-ld >/dev/null && command -v wat2wasm >/dev/null &&
		{ [[ -n ${WASI_SYSROOT:-} ]] || [[ -e /usr/lib/wasm32-wasi/libc.a ]]; } &&
		compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a' >/dev/null
}

if ! have_tools; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "build.sh: installing ${packages[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
	else
		echo "build.sh: missing the C or WAT toolchain; install the Debian packages: ${packages[*]}" >&2
		exit 1
	fi
fi

sysroot=()
if [[ -n ${WASI_SYSROOT:-} ]]; then
	sysroot=(--sysroot="$WASI_SYSROOT")
fi

set -x
(cd "$here/hello-go-reactor" && GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -o "$out/hello-go-reactor.wasm" .)
(cd "$here/header-filter" && GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -o "$out/header-filter.wasm" .)
(cd "$here/hello-go-wagi" && GOOS=wasip1 GOARCH=wasm "$GO" build -o "$out/hello-go-wagi.wasm" .)
clang --target=wasm32-wasi "${sysroot[@]}" -O2 -Wl,--strip-debug -o "$out/hello-c-wagi.wasm" "$here/hello-c-wagi/hello.c"
wat2wasm "$here/hello-wat/hello.wat" -o "$out/hello-wat.wasm"
