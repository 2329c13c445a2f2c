// qubes-claw admin: refreshes the overview fragment and appends audit lines
// from the event stream. Values are inserted as text, never as markup; the
// overview fragment is HTML escaped by the server's templates.
"use strict";
(function () {
  const refresh = Number(document.body.dataset.refresh) || 2000;
  const overview = document.getElementById("overview");
  const conn = document.getElementById("conn");
  const updated = document.getElementById("updated");
  const lines = document.getElementById("lines");
  const none = document.getElementById("nolines");
  const filter = document.getElementById("filter");
  const maxLines = 1000;

  function setConn(ok) {
    conn.classList.toggle("up", ok);
    conn.classList.toggle("down", !ok);
  }

  let busy = false;
  async function reload() {
    // Do not replace the fragment under a user choosing something in it.
    if (busy || overview.contains(document.activeElement)) return;
    busy = true;
    try {
      const r = await fetch("/partial/overview", { credentials: "same-origin", cache: "no-store" });
      if (!r.ok) throw new Error(r.status);
      const tpl = document.createElement("template");
      tpl.innerHTML = await r.text();
      const openDetails = [...document.querySelectorAll("details[open]")].map((d) => d.closest("section")?.id);
      // The fragment holds each [data-part] element again, re-rendered.
      for (const part of tpl.content.querySelectorAll("[data-part]")) {
        const cur = document.getElementById(part.id);
        if (cur) cur.replaceChildren(...part.childNodes);
      }
      for (const id of openDetails) {
        const d = id && document.querySelector("#" + id + " details");
        if (d) d.open = true;
      }
      const g = overview.querySelector(".grid");
      updated.textContent = "updated " + (g ? g.dataset.updated : "");
      setConn(true);
    } catch (e) {
      setConn(false);
      updated.textContent = "panel unreachable";
    } finally {
      busy = false;
    }
  }
  setInterval(reload, refresh);

  function matches(li) {
    const q = filter.value.trim().toLowerCase();
    return q === "" || li.dataset.text.includes(q);
  }

  function span(cls, text) {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  let soon = null;
  function add(ev) {
    const li = document.createElement("li");
    const cat = String(ev.category || "");
    const t = new Date(ev.time);
    li.append(
      span("t", isNaN(t) ? "" : t.toLocaleTimeString([], { hour12: false }) + " "),
      span("cat c-" + cat.toLowerCase().replace(/[^a-z-]/g, ""), cat),
      span("vm", ev.vm ? ev.vm + " " : ""),
      span("m", ev.msg || ""),
      span("d", ev.detail ? "  " + ev.detail : ""),
    );
    li.dataset.category = cat;
    li.dataset.text = [cat, ev.vm, ev.id, ev.msg, ev.detail].join(" ").toLowerCase();
    li.hidden = !matches(li);
    const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 8;
    lines.append(li);
    while (lines.children.length > maxLines) lines.firstElementChild.remove();
    none.hidden = true;
    if (atBottom) lines.scrollTop = lines.scrollHeight;
    // A command started or ended, or was refused: show it in the history
    // and the queue counts now, not at the next poll.
    if (/^(EXEC|DONE|DONE-FAIL|TIMEOUT|AUTH-FAIL|REJECT|DENY)$/.test(cat) && !soon) {
      soon = setTimeout(() => { soon = null; reload(); }, 150);
    }
  }

  filter.addEventListener("input", () => {
    for (const li of lines.children) li.hidden = !matches(li);
  });

  const es = new EventSource("/events");
  es.addEventListener("audit", (m) => {
    try { add(JSON.parse(m.data)); } catch (e) { /* a malformed line is skipped */ }
  });
  es.onopen = () => setConn(true);
  es.onerror = () => setConn(false);
})();
