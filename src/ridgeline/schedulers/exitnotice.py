"""The lines a batch job's script ends with: tell the coordinator that the trial ended.

They run once the exit wrapper has recorded the trial's status, so the coordinator can
start the next trial at once instead of on its next ``squeue``/``qstat`` poll. Over plain
HTTP, bash itself sends the request (``/dev/tcp``: a few ms, where starting Python to send it
takes 100 to 250 ms on a loaded node); over TLS, or when that fails, ``python -m
ridgeline.trial.exited`` does (which also re-reads a moved coordinator's address). Each try
has a time limit, and nothing here changes the job's exit code: the call is a nudge, the batch
system stays the authority. The token travels in the environment and bash's ``printf``
builtin, never on a command line. A job without a token (one of SHERPA's ``submit_job``)
calls nothing.
"""

from __future__ import annotations

import shlex
import sys

from ridgeline.trial import env

__all__ = ["lines"]

TIMEOUT_S = 5

# $1: the trial's status as the shell reports it. Fails (status 1) when no HTTP answer came
# back; a refusal (the attempt is over) is the coordinator's final word and is not retried.
_OVER_TCP = r"""ridgeline_exited() {
  local addr=${RIDGELINE_MASTER#http://} body="{\"status\": $1}" reply
  [ "$addr" != "$RIDGELINE_MASTER" ] || return 1
  addr=${addr%%/*}
  local host=${addr%:*} port=${addr##*:}
  host=${host#[}; host=${host%]}
  exec 3<>"/dev/tcp/$host/$port" || return 1
  local head
  printf -v head '%s\r\n' "POST /api/v1/trials/$RIDGELINE_TRIAL_ID/exited HTTP/1.1" \
    "Host: $addr" "Authorization: Bearer $RIDGELINE_TOKEN" "Content-Type: application/json" \
    "Content-Length: ${#body}" "Connection: close" ""
  printf '%s%s' "$head" "$body" >&3 || return 1
  IFS= read -r reply <&3
  exec 3<&-
  [[ $reply == "HTTP/1."* ]]
}"""


def lines(status: str) -> list[str]:
    """The bash lines that report ``status`` (a shell expression such as ``"$s"``)."""
    python = f"{shlex.quote(sys.executable)} -m ridgeline.trial.exited {status}"
    return [
        _OVER_TCP,
        f'if [ -n "${{{env.TOKEN}:-}}" ]; then',
        f'  timeout {TIMEOUT_S} bash -c "$(declare -f ridgeline_exited); ridgeline_exited '
        f'{status}" 2>/dev/null </dev/null \\',
        f"    || timeout {TIMEOUT_S * 2} {python} </dev/null >/dev/null || :",
        "fi",
    ]
