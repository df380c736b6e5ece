/* The tile status page: refresh it from ?format=json every few seconds,
   without reloading, until paused. The page is complete without this script,
   and the server computes everything shown (states, their wording, colours,
   indents, "ago"); this script only copies the page's own <template>s and
   fills them. Data reaches the page through textContent only, never as HTML:
   messages hold tile paths, which are user input. */
(function () {
    "use strict";

    // A copy of the <template> with this id, its first element.
    function copy(root, id) {
        return root.querySelector("#" + id).content.firstElementChild.cloneNode(true);
    }

    // Fill the elements of `node` found by class name with text.
    function fill(node, texts) {
        Object.keys(texts).forEach(function (name) {
            node.querySelector("." + name).textContent = texts[name];
        });
        return node;
    }

    function StatusPage(root) {
        this.root = root;
        this.url = root.dataset.jsonUrl;
        this.interval = parseInt(root.dataset.refreshMs, 10) || 3000;
        this.processes = root.querySelector("#tilestatus-processes tbody");
        this.hidden = root.querySelector("#tilestatus-hidden");
        this.clock = root.querySelector("#tilestatus-clock");
        this.messages = root.querySelector("#tilestatus-messages");
        this.readAt = root.querySelector("#tilestatus-read-at");
        this.live = root.querySelector("#tilestatus-live");
        this.button = root.querySelector("#tilestatus-pause");
        this.skipped = root.querySelector("#tilestatus-skipped");
        this.paused = false;
        this.timer = null;
        // Stacks left out of the JSON and fetched on demand, by request key.
        this.stacks = {};
    }

    StatusPage.prototype.start = function () {
        var page = this;
        // A stack left out of the JSON is fetched when it is opened ("toggle" does not
        // bubble: it is caught on its way down).
        this.root.addEventListener("toggle", function (event) {
            var details = event.target;
            if (details.open && details.dataset && details.dataset.stacks &&
                    !(details.dataset.key in page.stacks)) {
                page.loadStacks(details.dataset.stacks);
            }
        }, true);
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
                // Other sections (seeding.js) follow the same refreshes, so they
                // pause with the page and cost no request of their own.
                page.root.dispatchEvent(new CustomEvent("tilestatus:refreshed",
                                                        {detail: data, bubbles: true}));
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

    // The stacks of one process ("<host>:<pid>"), every one of them, from
    // ?format=json&stacks= (the report with that process's requests and stacks all
    // sent): shown in its open requests, kept for the next refreshes.
    StatusPage.prototype.loadStacks = function (process) {
        var page = this;
        var url = new URL(this.url, document.baseURI);
        url.searchParams.set("stacks", process);
        fetch(url.toString(), {credentials: "same-origin", cache: "no-store",
                               headers: {Accept: "application/json"}})
            .then(function (response) {
                if (!response.ok || response.redirected) {
                    throw new Error("HTTP " + response.status);
                }
                return response.json();
            })
            .then(function (data) {
                if (Object.keys(page.stacks).length > 1000) {
                    page.stacks = {};
                }
                data.processes.forEach(function (item) {
                    if (item.host + ":" + item.pid !== process) {
                        return;
                    }
                    item.requests.forEach(function (request) {
                        if (request.stack_text !== null) {
                            var key = [item.host, item.pid, request.path].join(" ");
                            page.stacks[key] = request.stack_text;
                        }
                    });
                });
                page.root.querySelectorAll("details.tilestatus-stack").forEach(function (node) {
                    if (node.dataset.key in page.stacks) {
                        node.querySelector(".tilestatus-stack-text").textContent =
                            page.stacks[node.dataset.key];
                        node.querySelector(".tilestatus-stack-link").hidden = true;
                    }
                });
            })
            .catch(function () {
                // The link in the stack stays: it shows the same stacks on a page.
            });
    };

    // One in-flight request: its text, the slow flag, its stack (collapsed unless
    // it was open before this refresh) once taken; a stack left out of the JSON
    // comes from what was fetched before, or is fetched once it is open.
    StatusPage.prototype.requestItem = function (item, process, key, open) {
        var line = fill(copy(this.root, "tilestatus-request-template"), {
            "tilestatus-request-text": item.text});
        var stack = line.querySelector(".tilestatus-stack");
        var text = item.stack_text !== null ? item.stack_text : this.stacks[key];
        var link = line.querySelector(".tilestatus-stack-link");
        line.querySelector(".tilestatus-stack-text").textContent = text || "";
        line.classList.toggle("tilestatus-gone", item.gone);
        line.querySelector(".tilestatus-flag").hidden = !item.slow;
        link.href = "?" + new URLSearchParams({stacks: process}).toString();
        link.hidden = !item.stack_left_out || text !== undefined;
        stack.dataset.key = key;
        if (item.stack_left_out) {
            stack.dataset.stacks = process;
        }
        stack.open = open.indexOf(key) >= 0;
        stack.hidden = !item.stack_taken;
        return line;
    };

    StatusPage.prototype.render = function (data) {
        var page = this;
        var root = this.root;
        var open = Array.prototype.map.call(
            root.querySelectorAll("details[open]"), function (node) { return node.dataset.key; });
        var missing = {};
        var rows = data.processes.map(function (item) {
            var row = fill(copy(root, "tilestatus-row-template"), {
                "tilestatus-host": item.host, "tilestatus-pid": String(item.pid),
                "tilestatus-state-text": item.state_text, "tilestatus-message": item.message,
                "tilestatus-ago": item.ago, "tilestatus-served": String(item.served),
                "tilestatus-failed": String(item.failed)});
            var requests = row.querySelector(".tilestatus-requests");
            var process = item.host + ":" + item.pid;
            var lines = item.requests.map(function (request) {
                var key = [item.host, item.pid, request.path].join(" ");
                var line = page.requestItem(request, process, key, open);
                if (request.stack_left_out && !(key in page.stacks) && open.indexOf(key) >= 0) {
                    missing[process] = true;
                }
                return line;
            });
            if (item.requests_not_listed) {  // the rest, listed on the page of this process
                var more = fill(copy(root, "tilestatus-more-template"), {
                    "tilestatus-count": String(item.requests_not_listed)});
                more.querySelector("a").href = "?" + new URLSearchParams({stacks: process}).toString();
                lines.push(more);
            }
            requests.replaceChildren.apply(requests, lines);
            requests.hidden = !item.requests.length;
            row.querySelector(".tilestatus-counts-text").hidden = item.served === null;
            row.className = "tilestatus-" + item.state + (item.slow ? " tilestatus-slow" : "");
            row.dataset.host = item.host;
            row.dataset.pid = String(item.pid);
            row.dataset.state = item.state;
            row.querySelector(".tilestatus-pid").classList.add("ts-c" + item.colour);
            row.querySelector(".tilestatus-flag").hidden = !item.slow;
            return row;
        });
        if (!rows.length) {
            rows.push(copy(root, "tilestatus-no-rows-template"));
        }
        this.processes.replaceChildren.apply(this.processes, rows);
        Object.keys(missing).forEach(function (process) {
            page.loadStacks(process);
        });

        var hidden = data.hidden.map(function (item) {
            var line = fill(copy(root, "tilestatus-hidden-template"), {
                "tilestatus-count": String(item.count), "tilestatus-state-text": item.state});
            var link = line.querySelector("a");
            link.textContent = item.host;
            link.href = "?" + new URLSearchParams({host: item.host}).toString();
            return line;
        });
        this.hidden.replaceChildren.apply(this.hidden, hidden);
        this.hidden.hidden = !hidden.length;

        var clock = data.clock_ahead.map(function (host) {
            return fill(copy(root, "tilestatus-clock-template"), {"tilestatus-host": host});
        });
        this.clock.replaceChildren.apply(this.clock, clock);
        this.clock.hidden = !clock.length;

        var lines = data.messages.map(function (item) {
            var line = fill(copy(root, "tilestatus-line-template"), {
                "tilestatus-host": item.host + " ", "tilestatus-pid": String(item.pid),
                "tilestatus-text": item.message, "tilestatus-ago": item.ago});
            line.className = "ts-i" + item.indent + " ts-c" + item.colour;
            line.querySelector(".tilestatus-host").hidden = !data.several_hosts;
            return line;
        });
        if (!lines.length) {
            lines.push(copy(root, "tilestatus-no-lines-template"));
        }
        this.messages.replaceChildren.apply(this.messages, lines);

        this.skipped.textContent = data.skipped ? data.skipped_text + "." : "";
        this.skipped.hidden = !data.skipped;

        this.readAt.textContent = data.read_at;
        this.readAt.setAttribute("datetime", data.read_at_iso);
    };

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
