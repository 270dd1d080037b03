#!/usr/bin/env bash
# What the integration tests use beyond Rust, from Debian, installed when missing: strace (the
# HSDB sync test counts fdatasync calls), aiosmtpd (a real SMTP server for the notification
# tests) and headless Chromium with its WebDriver and Selenium (the dashboard's browser test).
set -euo pipefail
missing=()
command -v strace >/dev/null || missing+=(strace)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' 2>/dev/null || missing+=(python3-selenium)
if ((${#missing[@]})); then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
