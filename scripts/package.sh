#!/usr/bin/env bash
# Builds what a user installs, into target/package/:
#   errbudget-<version>-x86_64-linux-gnu      release binary (glibc)
#   errbudget-<version>-x86_64-linux-musl     static release binary
#   errbudget_<version>_amd64.deb             the static binary, the systemd
#                                             unit, config, man page, completions
#   sizes.txt                                 bytes of each binary
# `--static-only` skips the glibc build: the test command's packaging tests
# use only the static binary and the package, and a release build is the
# longest step of a test run.
# Installs the musl target (rustup) and musl-tools (apt) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
glibc=1
[ "${1:-}" = "--static-only" ] && glibc=0
musl=x86_64-unknown-linux-musl
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
out=target/package
rm -rf "$out"
mkdir -p "$out"

if ! rustup target list --installed | grep -qx "$musl"; then
  step "rustup target add $musl"
  rustup target add "$musl"
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
  step "apt-get install musl-tools"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends musl-tools
fi

if ((glibc)); then
  step "cargo build --release (glibc)"
  cargo build --release --locked
fi
step "cargo build --release --target $musl (static)"
# ring compiles C and assembly: musl-gcc links it against musl.
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$musl"

gnu_bin="$out/errbudget-$version-x86_64-linux-gnu"
musl_bin="$out/errbudget-$version-x86_64-linux-musl"
cp "target/$musl/release/errbudget" "$musl_bin"
if ((glibc)); then
  cp target/release/errbudget "$gnu_bin"
  echo "glibc $(stat -c %s "$gnu_bin")" > "$out/sizes.txt"
fi
echo "musl $(stat -c %s "$musl_bin")" >> "$out/sizes.txt"

step "errbudget_${version}_amd64.deb"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$musl_bin" "$root/usr/bin/errbudget"
install -D -m 0644 packaging/systemd/errbudget.service "$root/lib/systemd/system/errbudget.service"
install -D -m 0644 packaging/config/errbudget.yaml "$root/etc/errbudget/errbudget.yaml"
install -D -m 0644 packaging/config/slos/prometheus.yaml "$root/etc/errbudget/slos/prometheus.yaml"
install -D -m 0644 config/errbudget.example.yaml "$root/usr/share/doc/errbudget/errbudget.example.yaml"
printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: errbudget\n\nFiles: *\nLicense: Apache-2.0\n On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n' \
  > "$root/usr/share/doc/errbudget/copyright"
mkdir -p "$root/usr/share/man/man1"
"$musl_bin" man | gzip -9n > "$root/usr/share/man/man1/errbudget.1.gz"
install -d "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
"$musl_bin" completions bash > "$root/usr/share/bash-completion/completions/errbudget"
"$musl_bin" completions zsh > "$root/usr/share/zsh/vendor-completions/_errbudget"
"$musl_bin" completions fish > "$root/usr/share/fish/vendor_completions.d/errbudget.fish"
chmod 0644 "$root"/usr/share/*/*/errbudget* "$root/usr/share/zsh/vendor-completions/_errbudget"

mkdir -p "$root/DEBIAN"
size_kib="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size_kib/" packaging/debian/control > "$root/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
deb="$out/errbudget_${version}_amd64.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
dpkg-deb --info "$deb" | sed -n '1,12p'

step "sizes"
cat "$out/sizes.txt"
echo "$deb"
