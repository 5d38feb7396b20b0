// The benchmark review page: one item at a time, marked from the keyboard, every mark
// POSTed to the server (which writes verdicts.json) as it is made.
"use strict";

const VERDICTS = { a: "accept", r: "reject", u: "unsure", x: null };
const SYMBOL = { accept: "✓", reject: "✗", unsure: "?" };
const state = { items: [], verdicts: {}, visible: [], pos: 0, pending: 0, rows: new Map() };
const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const reply = await fetch(url, { cache: "no-store" });
  if (!reply.ok) throw new Error(`${url}: HTTP ${reply.status}`);
  return reply.json();
}

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", Boolean(isError));
}

function fillSelect(select, values) {
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value;
    select.appendChild(option);
  }
}

function unique(values) {
  return [...new Set(values)];
}

function buildList() {
  const list = $("list");
  state.items.forEach((item, k) => {
    const row = document.createElement("li");
    row.dataset.id = item.id;
    row.dataset.task = item.task;
    row.dataset.format = item.format;
    const label = document.createElement("span");
    label.textContent = `${k + 1}. ${item.task} · ${item.format}`;
    const mark = document.createElement("span");
    mark.className = "mark";
    row.append(label, mark);
    row.addEventListener("click", () => {
      state.pos = Math.max(0, state.visible.indexOf(item));
      render();
    });
    list.appendChild(row);
    state.rows.set(item.id, row);
    paintRow(item.id);
  });
}

function paintRow(id) {
  const row = state.rows.get(id);
  const verdict = state.verdicts[id];
  if (verdict) row.dataset.verdict = verdict;
  else delete row.dataset.verdict;
  row.querySelector(".mark").textContent = verdict ? SYMBOL[verdict] : "";
}

function matches(item) {
  const task = $("task-filter").value;
  const format = $("format-filter").value;
  const shown = $("verdict-filter").value;
  const verdict = state.verdicts[item.id];
  if (task && item.task !== task) return false;
  if (format && item.format !== format) return false;
  if (shown === "none") return !verdict;
  if (shown) return verdict === shown;
  return true;
}

function applyFilters(keepId) {
  state.visible = state.items.filter(matches);
  const visibleIds = new Set(state.visible.map((item) => item.id));
  for (const [id, row] of state.rows) row.hidden = !visibleIds.has(id);
  const keep = state.visible.findIndex((item) => item.id === keepId);
  state.pos = keep >= 0 ? keep : 0;
  render();
}

function current() {
  return state.visible[state.pos];
}

function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

function render() {
  const item = current();
  for (const row of state.rows.values()) row.classList.remove("current");
  $("images").replaceChildren();
  $("choices").replaceChildren();
  if (!item) {
    $("position").textContent = "no item matches the filters";
    for (const id of ["question", "answer", "canonical", "meta", "verdict"]) $(id).textContent = "";
    document.body.dataset.current = "";
    updateProgress();
    return;
  }
  $("position").textContent = `item ${state.pos + 1} of ${state.visible.length} shown · ${item.id}`;
  for (const path of item.images || []) {
    const img = document.createElement("img");
    img.src = "/bench/" + encodePath(path);
    img.alt = path;
    $("images").appendChild(img);
  }
  // Text, never HTML: questions carry <ref> and <box> tags that must show as written.
  $("question").textContent = item.question;
  for (const choice of item.choices || []) {
    const li = document.createElement("li");
    li.textContent = choice;
    $("choices").appendChild(li);
  }
  $("answer").textContent = item.answer;
  $("canonical").textContent = `canonical answer: ${item.canonical} (${item.answer_type})`;
  $("meta").textContent = [item.task, item.relation, item.format, item.source, item.scene,
    item.meta && item.meta.frame_id].filter(Boolean).join(" · ");
  const verdict = state.verdicts[item.id];
  const badge = $("verdict");
  badge.className = `verdict ${verdict || "none"}`;
  badge.textContent = verdict || "not reviewed";
  const row = state.rows.get(item.id);
  row.classList.add("current");
  row.scrollIntoView({ block: "nearest" });
  document.body.dataset.current = item.id;
  history.replaceState(null, "", "#" + encodeURIComponent(item.id));
  updateProgress();
}

function updateProgress() {
  const counts = { accept: 0, reject: 0, unsure: 0 };
  for (const item of state.items) {
    const verdict = state.verdicts[item.id];
    if (verdict) counts[verdict] += 1;
  }
  const reviewed = counts.accept + counts.reject + counts.unsure;
  const shown = state.visible.filter((item) => state.verdicts[item.id]).length;
  $("progress").textContent =
    `${reviewed} / ${state.items.length} reviewed · ${counts.accept} accept · ` +
    `${counts.reject} reject · ${counts.unsure} unsure · this view ${shown} / ` +
    `${state.visible.length}`;
}

async function mark(verdict) {
  const item = current();
  if (!item) return;
  const id = item.id;
  const before = state.verdicts[id];
  if (verdict) state.verdicts[id] = verdict;
  else delete state.verdicts[id];
  paintRow(id);
  render();
  state.pending += 1;
  document.body.dataset.pending = String(state.pending);
  setStatus("saving…");
  try {
    const reply = await fetch("/api/verdict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id, verdict }),
    });
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.error || `HTTP ${reply.status}`);
    setStatus(`saved (${data.progress.reviewed} / ${data.progress.total})`);
  } catch (error) {
    if (before) state.verdicts[id] = before;
    else delete state.verdicts[id];
    paintRow(id);
    render();
    setStatus(`NOT SAVED: ${error.message}`, true);
  } finally {
    state.pending -= 1;
    document.body.dataset.pending = String(state.pending);
  }
}

function move(step) {
  if (!state.visible.length) return;
  state.pos = Math.min(state.visible.length - 1, Math.max(0, state.pos + step));
  render();
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const tag = event.target.tagName;
  if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") return;
  const key = event.key;
  if (key in VERDICTS) {
    event.preventDefault();
    const advance = VERDICTS[key] !== null;
    mark(VERDICTS[key]);
    if (advance) move(1);
  } else if (key === "j" || key === "ArrowRight" || key === "ArrowDown") {
    event.preventDefault();
    move(1);
  } else if (key === "k" || key === "ArrowLeft" || key === "ArrowUp") {
    event.preventDefault();
    move(-1);
  }
}

async function start() {
  try {
    const [bench, marks] = await Promise.all([getJSON("/api/bench"), getJSON("/api/verdicts")]);
    state.items = bench.items;
    state.verdicts = marks.verdicts;
    document.title = `Review · ${bench.name}`;
    $("title").textContent = `Review · ${bench.name}`;
    fillSelect($("task-filter"), unique(state.items.map((item) => item.task)));
    fillSelect($("format-filter"), unique(state.items.map((item) => item.format)));
    buildList();
    for (const id of ["task-filter", "format-filter", "verdict-filter"]) {
      $(id).addEventListener("change", (event) => {
        const keep = current() && current().id;
        applyFilters(keep);
        event.target.blur();
      });
    }
    document.addEventListener("keydown", onKey);
    const fromHash = decodeURIComponent(location.hash.slice(1));
    const firstOpen = state.items.find((item) => !state.verdicts[item.id]);
    applyFilters(fromHash || (firstOpen && firstOpen.id));
    document.body.dataset.ready = "true";
  } catch (error) {
    setStatus(`cannot load the benchmark: ${error.message}`, true);
  }
}

start();
