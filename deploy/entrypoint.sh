#!/bin/sh
# The container's start: check the installation, then serve.
#
#   no arguments      `guidebot doctor` (offline), then `exec guidebot serve`.
#                     If the doctor finds a problem it prints one line per
#                     problem and the container stops with exit code 2.
#   any arguments     run that guidebot command instead, e.g.
#                     docker compose run --rm guidebot ingest --school st-annes /policies/x.docx
#
# GUIDEBOT_SKIP_DOCTOR=1 starts the server without the check (not recommended).
set -eu

if [ "$#" -gt 0 ]; then
    exec guidebot "$@"
fi

if [ "${GUIDEBOT_SKIP_DOCTOR:-0}" != "1" ]; then
    if ! guidebot doctor; then
        echo "guidebot: not starting: fix the FAIL lines above (guidebot doctor), then start again" >&2
        exit 2
    fi
fi

# exec: guidebot becomes the main process, so `docker stop` (SIGTERM) reaches it
# directly and it finishes the deliveries in hand before it exits.
exec guidebot serve
