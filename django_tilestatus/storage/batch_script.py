"""One write of the recorder as one Lua script: applied whole, once, and past a bad key.

``RedisStore.write`` describes a batch as commands on keys (``BatchCommands``) and
runs them with ``BATCH_SCRIPT`` in one ``EVALSHA`` (``EVAL`` when the server does not
know the script yet). The script runs atomically, so a batch is applied whole or
not at all, and it carries the writer's token and batch number: it first compares
them with what ``<namespace>:applied:<host>:<pid>`` holds (``"<token> <number>"``)
and changes nothing when that writer's batch of this number or a later one was
already applied. A batch whose reply was lost (a timeout) can so be sent again.

Each command runs under ``redis.pcall``. A command refused for what its key holds
(``WRONGTYPE``, or ``ERR`` such as "hash value is not an integer") is skipped and
counted against its key; the others still run, and the reply names the keys that
failed. A refusal of the server itself (``OOM``, ``READONLY``, ``MISCONF``...)
comes before anything changed (Redis refuses only a script's first write, and
the numbered SET goes first), and the script returns it as its error: nothing was
applied and the batch can be sent again later.

The commands travel as one argument, a JSON array the script reads with
``cjson.decode`` (Redis's own, and fakeredis's): redis-py's work per argument,
not Redis's, was most of what a send cost the writer.

Every key the script touches is passed in ``KEYS`` (they share the prefix's hash
tag, so one cluster slot). The script uses what Redis 6.2 and later run (Lua 5.1,
no shebang flags) and nothing that fakeredis (with lupa) lacks.

Core module: imports the standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

#: Values one command of the script takes at most: Lua's ``unpack`` is bounded by its
#: stack (about 8,000), so longer commands are split (``LPUSH``, ``HSET``, ``ZADD``...
#: of many values are the same as several in a row).
MAX_VALUES = 1000

BATCH_SCRIPT = """\
local unpack = table.unpack or unpack
local failed, reasons = {}, {}
local function refused(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
local function data_error(reason)
  reason = tostring(reason)
  return string.sub(reason, 1, 10) == 'WRONGTYPE ' or string.sub(reason, 1, 4) == 'ERR '
end
local function skip(index, reason)
  failed[index] = (failed[index] or 0) + 1
  if reasons[index] == nil then reasons[index] = tostring(reason) end
end
local number = tonumber(ARGV[2])
if number > 0 then
  local last = redis.pcall('GET', KEYS[1])
  if refused(last) then
    skip(1, last.err)
  elseif last then
    local writer, done = string.match(last, '^(%S+) (%d+)$')
    if writer == ARGV[1] and tonumber(done) >= number then
      return {0}
    end
  end
  local reply = redis.pcall('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
  if refused(reply) then
    return reply
  end
end
local commands = cjson.decode(ARGV[4])
local i, n = 1, #commands
while i <= n do
  local index, count = tonumber(commands[i + 1]), tonumber(commands[i + 2])
  local reply = redis.pcall(commands[i], KEYS[index], unpack(commands, i + 3, i + 2 + count))
  if refused(reply) then
    if not data_error(reply.err) then
      return reply
    end
    skip(index, reply.err)
  end
  i = i + 3 + count
end
local result = {1}
for index, count in pairs(failed) do
  result[#result + 1] = index
  result[#result + 1] = count
  result[#result + 1] = reasons[index]
end
return result
"""

BATCH_SCRIPT_SHA = hashlib.sha1(BATCH_SCRIPT.encode()).hexdigest()


class BatchCommands:
    """A batch as the script takes it: its keys (``KEYS``) and commands (``ARGV``).

    ``applied`` is the writer's applied-batch key, always ``KEYS[1]``. Each key is
    given a family (``"log"``, ``"stats:total"``...) that the reply's failures are
    reported by, so a log line never names a key (which holds a host name) or a value
    (which may hold a tile path).
    """

    def __init__(self, applied: str) -> None:
        self.keys: list[str] = [applied]
        self.families: list[str] = ["applied"]
        self._index: dict[str, int] = {applied: 1}
        self.commands: list[Any] = []

    def __bool__(self) -> bool:
        return bool(self.commands)

    def _key(self, family: str, key: str) -> int:
        index = self._index.get(key)
        if index is None:
            self.keys.append(key)
            self.families.append(family)
            index = self._index[key] = len(self.keys)
        return index

    def add(self, family: str, command: str, key: str, *values: Any) -> None:
        """``command key values...`` (at most ``MAX_VALUES`` values)."""
        self.commands += [command, self._key(family, key), len(values), *values]

    def add_many(
        self,
        family: str,
        command: str,
        key: str,
        values: Sequence[Any],
        options: Sequence[Any] = (),
        width: int = 1,
    ) -> None:
        """``command key options... values...``, as several commands if there are many
        values; ``width`` values go together (2 for field and value)."""
        step = max(width, MAX_VALUES // width * width)
        for start in range(0, len(values), step):
            self.add(family, command, key, *options, *values[start : start + step])

    def arguments(self, token: str, number: int, ttl: int) -> list[Any]:
        """``ARGV``: the writer's token and batch number (0: no check), the applied
        key's TTL, then the commands as one JSON array of strings (numbers written as
        redis-py writes them). One argument, not hundreds: the client's work per
        argument is most of a send's cost."""
        commands = [value if type(value) is str else repr(value) for value in self.commands]
        return [token, number, ttl, json.dumps(commands, ensure_ascii=False)]


def parse_reply(reply: Any, families: Sequence[str]) -> tuple[bool, dict[str, tuple[int, str]]]:
    """Whether the batch was applied (False: it had been already), and per key family
    the commands skipped and the first reason."""
    if not isinstance(reply, list | tuple) or not reply:
        return True, {}
    skipped: dict[str, tuple[int, str]] = {}
    rest = list(reply[1:])
    for start in range(0, len(rest) - 2, 3):
        index, count, reason = rest[start : start + 3]
        family = families[int(index) - 1] if 0 < int(index) <= len(families) else "?"
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        known = skipped.get(family)
        skipped[family] = (int(count) + (known[0] if known else 0), known[1] if known else text)
    return int(reply[0]) == 1, skipped
