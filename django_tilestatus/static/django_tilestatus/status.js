/* The tile status page: refresh both lists from ?format=json every few
   seconds, without reloading, until paused. The page is complete without this
   script. Data reaches the page through textContent only, never as HTML:
   messages hold tile paths, which are user input. */
(function () {
    "use strict";

    // MD5 (RFC 1321) of an ASCII string, so that pid_indent() gives a new PID
    // the same column as the server does.
    var COLOURS = 10;  // report.COLOURS, the ts-c0 ... ts-c9 classes of status.css
    var SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    var SINES = [];
    for (var n = 0; n < 64; n++) {
        SINES.push(Math.floor(Math.abs(Math.sin(n + 1)) * 4294967296) | 0);
    }

    function md5Hex(text) {
        var length = text.length;
        var words = new Array(((length + 8) >>> 6) * 16 + 16).fill(0);
        for (var i = 0; i < length; i++) {
            words[i >> 2] |= text.charCodeAt(i) << ((i % 4) * 8);
        }
        words[length >> 2] |= 0x80 << ((length % 4) * 8);
        words[words.length - 2] = length * 8;
        var state = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476];
        for (var block = 0; block < words.length; block += 16) {
            var a = state[0], b = state[1], c = state[2], d = state[3];
            for (var step = 0; step < 64; step++) {
                var round = step >> 4, mix, index;
                if (round === 0) {
                    mix = (b & c) | (~b & d);
                    index = step;
                } else if (round === 1) {
                    mix = (d & b) | (~d & c);
                    index = (5 * step + 1) % 16;
                } else if (round === 2) {
                    mix = b ^ c ^ d;
                    index = (3 * step + 5) % 16;
                } else {
                    mix = c ^ (b | ~d);
                    index = (7 * step) % 16;
                }
                var shift = SHIFTS[round * 4 + (step % 4)];
                var sum = (a + mix + SINES[step] + words[block + index]) | 0;
                a = d;
                d = c;
                c = b;
                b = (b + ((sum << shift) | (sum >>> (32 - shift)))) | 0;
            }
            state = [(state[0] + a) | 0, (state[1] + b) | 0,
                     (state[2] + c) | 0, (state[3] + d) | 0];
        }
        var hex = "";
        state.forEach(function (word) {
            for (var byte = 0; byte < 4; byte++) {
                hex += ((word >>> (byte * 8)) & 255).toString(16).padStart(2, "0");
            }
        });
        return hex;
    }

    // The original's column for a PID, 0-31: the MD5 of its digits, modulo 32.
    function pidIndent(pid) {
        return parseInt(md5Hex(String(pid)).slice(-2), 16) % 32;
    }

    // "moments", "42 seconds", "5 minutes", ... as status.nice_time().
    function niceTime(seconds) {
        var units = [[90, 1, "second"], [5400, 60, "minute"], [129600, 3600, "hour"],
                     [907200, 86400, "day"], [3888000, 604800, "week"],
                     [Infinity, 2592000, "month"]];
        if (seconds < 15) {
            return "moments";
        }
        for (var i = 0; i < units.length; i++) {
            if (seconds < units[i][0]) {
                var count = Math.floor(seconds / units[i][1]);
                return count + " " + units[i][2] + (count === 1 ? "" : "s");
            }
        }
    }

    // As report.request_state(): busy from "Started <path>" until any message
    // other than the cache-lock ones that happen inside a request.
    function requestState(history) {
        for (var i = 0; i < history.length; i++) {
            var message = history[i].message;
            if (message.indexOf("Started ") === 0) {
                return {state: "busy", path: message.slice(8), busyFor: history[i].elapsed};
            }
            if (message === "Destroyed") {
                return {state: "gone"};
            }
            if (message.indexOf("Attempted cache lock") !== 0 &&
                    message.indexOf("Got cache lock in ") !== 0) {
                break;
            }
        }
        return {state: "idle"};
    }

    // As report.colour_processes(): a colour per process by rank in (host,
    // PID) order; "host pid" -> 0-9.
    function colourProcesses(items) {
        var seen = {}, keys = [];
        items.forEach(function (item) {
            var key = item.host + " " + item.pid;
            if (!(key in seen)) {
                seen[key] = true;
                keys.push([item.host, item.pid, key]);
            }
        });
        keys.sort(function (a, b) {
            return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];
        });
        var colours = {};
        keys.forEach(function (key, rank) {
            colours[key[2]] = rank % COLOURS;
        });
        return colours;
    }

    function element(tag, text, className) {
        var node = document.createElement(tag);
        if (text !== undefined) {
            node.textContent = text;
        }
        if (className) {
            node.className = className;
        }
        return node;
    }

    function StatusPage(root) {
        this.root = root;
        this.url = root.dataset.jsonUrl;
        this.interval = parseInt(root.dataset.refreshMs, 10) || 3000;
        this.busyAfter = parseFloat(root.dataset.busyAfter) || 10;
        this.processes = root.querySelector("#tilestatus-processes tbody");
        this.messages = root.querySelector("#tilestatus-messages");
        this.readAt = root.querySelector("#tilestatus-read-at");
        this.live = root.querySelector("#tilestatus-live");
        this.button = root.querySelector("#tilestatus-pause");
        this.paused = false;
        this.timer = null;
        // Which processes the server found gone: "host pid" -> last event.
        // Only the server can see liveness; a row stays gone until it records again.
        this.gone = {};
        var rows = this.processes.querySelectorAll("tr.tilestatus-gone");
        for (var i = 0; i < rows.length; i++) {
            this.gone[rows[i].dataset.host + " " + rows[i].dataset.pid] =
                parseFloat(rows[i].dataset.lastEvent);
        }
    }

    StatusPage.prototype.start = function () {
        var page = this;
        this.button.hidden = false;
        this.button.addEventListener("click", function () {
            page.setPaused(!page.paused);
        });
        document.addEventListener("visibilitychange", function () {
            if (!document.hidden && !page.paused) {
                page.schedule(0);
            }
        });
        this.schedule(this.interval);
    };

    StatusPage.prototype.setPaused = function (paused) {
        this.paused = paused;
        this.button.textContent = paused ? "Resume" : "Pause";
        this.button.setAttribute("aria-pressed", paused ? "true" : "false");
        this.live.textContent = paused ? "Paused" : "";
        if (paused) {
            clearTimeout(this.timer);
        } else {
            this.schedule(0);
        }
    };

    StatusPage.prototype.schedule = function (delay) {
        var page = this;
        clearTimeout(this.timer);
        this.timer = setTimeout(function () {
            page.refresh();
        }, delay);
    };

    StatusPage.prototype.refresh = function () {
        var page = this;
        if (this.paused || document.hidden) {
            return;
        }
        var controller = new AbortController();
        var timeout = setTimeout(function () {
            controller.abort();
        }, 10000);
        fetch(this.url, {credentials: "same-origin", cache: "no-store",
                         headers: {Accept: "application/json"}, signal: controller.signal})
            .then(function (response) {
                if (response.redirected) {  // to the admin login
                    throw new Error("signed out: reload the page to sign in again");
                }
                return response.json().then(function (data) {
                    if (!response.ok) {
                        throw new Error(data.error || "HTTP " + response.status);
                    }
                    return data;
                });
            })
            .then(function (data) {
                page.render(data);
                page.live.textContent = "Live";
            })
            .catch(function (error) {
                page.live.textContent = "Not updated (" + error.message + "); retrying";
            })
            .then(function () {
                clearTimeout(timeout);
                if (!page.paused) {
                    page.schedule(page.interval);
                }
            });
    };

    StatusPage.prototype.render = function (data) {
        var everyone = data.processes.concat(data.messages);
        var colours = colourProcesses(everyone);
        var severalHosts = everyone.some(function (item) {
            return item.host !== everyone[0].host;
        });
        var history = {};
        data.messages.forEach(function (item) {
            var key = item.host + " " + item.pid;
            (history[key] = history[key] || []).push(item);
        });
        var page = this;
        var rows = data.processes.map(function (item) {
            var key = item.host + " " + item.pid;
            return page.processRow(item, history[key] || [item], colours[key], data.now);
        });
        if (!rows.length) {
            var none = element("tr", undefined, "tilestatus-none");
            var cell = element("td", "No process has recorded anything in the last " +
                               page.root.dataset.hideAfter + ".");
            cell.colSpan = 5;
            none.appendChild(cell);
            rows.push(none);
        }
        this.processes.replaceChildren.apply(this.processes, rows);

        var lines = data.messages.map(function (item) {
            var line = element("li", undefined, "ts-i" + pidIndent(item.pid) + " ts-c" +
                               colours[item.host + " " + item.pid]);
            if (severalHosts) {
                line.appendChild(document.createTextNode(item.host + " "));
            }
            line.appendChild(element("span", String(item.pid), "tilestatus-pid"));
            line.appendChild(document.createTextNode(" " + item.message + ", "));
            line.appendChild(element("span", niceTime(item.elapsed) + " ago", "tilestatus-ago"));
            return line;
        });
        if (!lines.length) {
            lines.push(element("li", "No messages yet.", "tilestatus-none"));
        }
        this.messages.replaceChildren.apply(this.messages, lines);

        var readAt = new Date(data.now * 1000).toISOString();
        this.readAt.textContent = readAt.slice(11, 19) + " UTC";
        this.readAt.setAttribute("datetime", readAt);
    };

    StatusPage.prototype.processRow = function (item, history, colour, now) {
        var key = item.host + " " + item.pid;
        var lastEvent = now - item.elapsed;
        var state = requestState(history);
        if (key in this.gone && Math.abs(this.gone[key] - lastEvent) < 1) {
            state = {state: "gone", path: state.path};
        }
        var slow = state.state === "busy" && state.busyFor > this.busyAfter;
        var row = element("tr", undefined,
                          "tilestatus-" + state.state + (slow ? " tilestatus-slow" : ""));
        row.dataset.host = item.host;
        row.dataset.pid = String(item.pid);
        row.dataset.lastEvent = lastEvent.toFixed(6);
        row.appendChild(element("td", item.host, "tilestatus-host"));
        row.appendChild(element("td", String(item.pid), "tilestatus-pid ts-c" + colour));
        var text = state.state;  // as ProcessRow.state_text
        if (state.state === "busy") {
            text = "busy on " + state.path + " for " + Math.floor(state.busyFor) + " s";
        } else if (state.state === "gone" && state.path) {
            text = "gone while busy on " + state.path;
        }
        var stateCell = element("td", text, "tilestatus-state");
        if (slow) {
            stateCell.appendChild(document.createTextNode(" "));
            stateCell.appendChild(element("strong", "slow", "tilestatus-flag"));
        }
        row.appendChild(stateCell);
        row.appendChild(element("td", item.message, "tilestatus-message"));
        row.appendChild(element("td", niceTime(item.elapsed) + " ago", "tilestatus-ago"));
        return row;
    };

    if (typeof module === "object" && module.exports) {
        // For tests outside a browser page.
        module.exports = {md5Hex: md5Hex, pidIndent: pidIndent, niceTime: niceTime,
                          requestState: requestState, colourProcesses: colourProcesses};
    }
    if (typeof document !== "undefined") {
        var start = function () {
            var root = document.getElementById("tilestatus");
            if (root && root.dataset.jsonUrl) {
                new StatusPage(root).start();
            }
        };
        if (document.readyState === "loading") {
            document.addEventListener("DOMContentLoaded", start);
        } else {
            start();
        }
    }
})();
