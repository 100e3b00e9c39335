// The pretend phones: polls /simulator/state, draws each phone, and sends what a phone does to the
// simulator's endpoints, which pass it on to the hotline's real webhooks. No inline script (CSP).
"use strict";

(function () {
  const base = document.body.dataset.base;
  let csrf = document.querySelector('meta[name="csrf-token"]').content; // renewed by each refresh (a login elsewhere replaces it)
  const template = document.getElementById("phone-template");
  const list = document.getElementById("phones");
  const cards = new Map(); // phone id -> {element, calls: state of the call on this phone}
  const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
  const CALL_WORDS = { queued: "ringing", initiated: "ringing", ringing: "ringing", "in-progress": "on the line",
    completed: "ended", busy: "declined", "no-answer": "no answer", failed: "failed", canceled: "cancelled" };

  async function send(path, data) {
    const response = await fetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(data || {}),
    });
    const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
    return body;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- one phone ---------------------------------------------------------------------------

  function build(phone) {
    const element = template.content.firstElementChild.cloneNode(true);
    const card = { element, phone, call: null, digits: "", drawn: {} };
    element.dataset.id = phone.id;
    element.dataset.number = phone.number;
    element.classList.add(phone.kind);
    element.querySelector(".phone-label").textContent = phone.label || "Pretend " + phone.kind;
    element.querySelector(".phone-number").textContent = phone.display;
    element.querySelector(".phone-kind").textContent = phone.kind + (phone.language && phone.language.code !== "en"
      ? " · " + phone.language.name + " (" + phone.language.native + ")" : "");
    if (phone.language) element.dataset.language = phone.language.code;
    if (phone.kind !== "mobile") {
      element.querySelector(".compose").remove();
      element.querySelector(".thread").remove();
    }
    const keypad = element.querySelector(".keypad");
    KEYS.forEach((key) => {
      const button = el("button", "key", key);
      button.type = "button";
      button.addEventListener("click", () => press(card, key));
      keypad.appendChild(button);
    });
    element.querySelector(".remove").addEventListener("click", () => remove(card));
    element.querySelector(".dial").addEventListener("click", () => dial(card));
    element.querySelector(".answer").addEventListener("click", () => answer(card));
    element.querySelector(".decline").addEventListener("click", () => decline(card));
    element.querySelector(".hangup").addEventListener("click", () => hangUp(card));
    element.querySelector(".silence").addEventListener("click", () => step(card, {}));
    element.querySelector(".speech").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = event.target.elements.speech;
      const words = input.value.trim();
      if (!words || !card.call || !card.call.wait) return;
      input.value = "";
      transcript(card, { kind: "you", text: "You say: “" + words + "”" });
      step(card, { speech: words });
    });
    const compose = element.querySelector(".compose");
    if (compose) {
      compose.addEventListener("submit", async (event) => {
        event.preventDefault();
        const input = event.target.elements.body;
        const body = input.value.trim();
        if (!body) return;
        input.value = "";
        try {
          await send("/phones/" + phone.id + "/text", { body });
        } catch (error) {
          alert(error.message);
        }
        refresh();
      });
    }
    return card;
  }

  function drawThread(card, texts) {
    const thread = card.element.querySelector(".thread");
    const key = JSON.stringify(texts);
    if (!thread || card.drawn.thread === key) return;
    card.drawn.thread = key;
    thread.replaceChildren(...texts.map((text) => {
      const item = el("li", "text " + (text.incoming ? "incoming" : "outgoing"));
      item.dataset.sid = text.sid;
      item.dataset.status = text.status;
      item.appendChild(el("span", "body", text.body));
      item.appendChild(el("span", "meta", text.time + " · " + text.status));
      return item;
    }));
    thread.scrollTop = thread.scrollHeight;
  }

  function drawCalls(card, calls) {
    const ringing = calls.find((call) => call.status === "ringing");
    const panel = card.element.querySelector(".ringing");
    panel.hidden = !ringing || Boolean(card.call);
    panel.dataset.sid = ringing ? ringing.sid : "";
    const key = JSON.stringify(calls);
    if (card.drawn.calls === key) return;
    card.drawn.calls = key;
    card.element.querySelector(".call-log").replaceChildren(...calls.map((call) => {
      const item = el("li", "alert-call");
      item.dataset.sid = call.sid;
      item.dataset.status = call.status;
      item.appendChild(el("span", "meta", "☎ " + call.time + " alert call · " + (CALL_WORDS[call.status] || call.status)));
      item.appendChild(el("span", "spoken", call.spoken));
      return item;
    }));
  }

  // --- calls -------------------------------------------------------------------------------

  function transcript(card, line) {
    const item = el("li", "line line-" + line.kind, line.text);
    const expected = (card.phone.language && card.phone.language.say_language) || "en-GB";
    if (line.kind === "say" && !line.language) {
      item.appendChild(el("span", "warning", " (no language: Twilio would read this in American English)"));
    } else if (line.kind === "say" && line.language !== expected) {
      item.appendChild(el("span", "muted", " (spoken in " + line.language + ")"));  // the language menu: each choice in its own voice
    }
    card.element.querySelector(".transcript").appendChild(item);
  }

  function show(card, answer) {
    const panel = card.element.querySelector(".call");
    panel.hidden = false;
    card.element.querySelector(".ringing").hidden = true;
    answer.step.lines.forEach((line) => transcript(card, line));
    card.digits = "";
    const wait = answer.step.wait;
    card.call = answer.step.ended ? null : { token: answer.token, wait };
    const prompt = card.element.querySelector(".prompt");
    const speech = card.element.querySelector(".speech");
    const keypad = card.element.querySelector(".keypad");
    panel.classList.toggle("ended", answer.step.ended);
    if (answer.step.ended) {
      prompt.textContent = "Call ended.";
      speech.hidden = keypad.hidden = true;
      card.element.querySelector(".silence").hidden = true;
      card.element.querySelector(".hangup").textContent = "Close";
      return;
    }
    const keys = wait.kind === "gather" && wait.input.includes("dtmf");
    const words = wait.input.includes("speech");
    keypad.hidden = !keys && wait.kind !== "record";
    speech.hidden = !words;
    card.element.querySelector(".silence").hidden = false;
    card.element.querySelector(".hangup").textContent = "Hang up";
    if (wait.kind === "record") {
      prompt.textContent = "Recording: type what you say, then press Say (or a key) to finish.";
    } else {
      const how = [keys ? "press keys" : null, words ? "say something (type it)" : null].filter(Boolean).join(" or ");
      const limit = wait.num_digits ? " (" + wait.num_digits + " key" + (wait.num_digits > 1 ? "s" : "") + ")" : "";
      prompt.textContent = "The hotline is listening: " + how + limit + ".";
    }
  }

  async function run(card, path, data) {
    try {
      show(card, await send(path, data));
    } catch (error) {
      transcript(card, { kind: "error", text: error.message });
      card.call = null;
    }
    refresh();
  }

  function startCall(card) {
    card.element.querySelector(".transcript").replaceChildren();
    card.element.querySelector(".call").hidden = false;
  }

  function dial(card) {
    if (card.call) return;
    startCall(card);
    transcript(card, { kind: "note", text: "Calling the hotline…" });
    run(card, "/phones/" + card.phone.id + "/call");
  }

  function answer(card) {
    const sid = card.element.querySelector(".ringing").dataset.sid;
    if (!sid || card.call) return;
    startCall(card);
    transcript(card, { kind: "note", text: "You answer." });
    run(card, "/calls/" + sid + "/answer");
  }

  async function decline(card) {
    const sid = card.element.querySelector(".ringing").dataset.sid;
    if (sid) await send("/calls/" + sid + "/decline").catch(() => {});
    refresh();
  }

  function step(card, input) {
    if (!card.call) return;
    const { token } = card.call;
    card.call = null; // one answer per question
    run(card, "/calls/step", { token, ...input });
  }

  function press(card, key) {
    const call = card.call;
    if (!call || !call.wait) return;
    const wait = call.wait;
    transcript(card, { kind: "you", text: "You press " + key });
    if (wait.kind === "record") {
      if (wait.finish_on_key.includes(key)) card.element.querySelector(".speech").requestSubmit();
      return;
    }
    if (!wait.input.includes("dtmf")) return;
    if (key === wait.finish_on_key) {
      step(card, { digits: card.digits });
      return;
    }
    card.digits += key;
    if (wait.num_digits && card.digits.length >= wait.num_digits) step(card, { digits: card.digits });
  }

  async function hangUp(card) {
    const call = card.call;
    card.call = null;
    card.element.querySelector(".call").hidden = true;
    if (call) {
      const words = card.element.querySelector(".speech").elements.speech.value;
      await send("/calls/hangup", { token: call.token, speech: words }).catch(() => {});
    }
    refresh();
  }

  async function remove(card) {
    await send("/phones/" + card.phone.id + "/delete").catch(() => {});
    refresh();
  }

  // --- the whole page ----------------------------------------------------------------------

  function drawTraffic(traffic) {
    if (!traffic.length) {
      const row = el("tr", "nothing");
      const cell = el("td", "", "Nothing yet.");
      cell.colSpan = 6;
      row.appendChild(cell);
      document.getElementById("traffic").replaceChildren(row);
      return;
    }
    document.getElementById("traffic").replaceChildren(...traffic.map((row) => {
      const tr = el("tr");
      [row.time, row.kind, row.from, row.to, row.text, row.status].forEach((cell) => tr.appendChild(el("td", "", cell)));
      return tr;
    }));
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(base + "/state", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const state = await response.json();
      if (state.csrf) csrf = state.csrf;
      const seen = new Set();
      state.phones.forEach((phone) => {
        seen.add(phone.id);
        let card = cards.get(phone.id);
        if (!card) {
          card = build(phone);
          cards.set(phone.id, card);
          list.appendChild(card.element);
        }
        drawThread(card, phone.texts);
        drawCalls(card, phone.calls);
      });
      cards.forEach((card, id) => {
        if (!seen.has(id)) {
          card.element.remove();
          cards.delete(id);
        }
      });
      document.getElementById("no-phones").hidden = state.phones.length > 0;
      drawTraffic(state.traffic);
      document.body.dataset.ready = "yes";
    } finally {
      busy = false;
    }
  }

  document.getElementById("add-phone").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const error = document.getElementById("add-error");
    error.textContent = "";
    try {
      await send("/phones", { number: form.elements.number.value, kind: form.elements.kind.value, label: form.elements.label.value });
      form.reset();
    } catch (failure) {
      error.textContent = failure.message;
    }
    refresh();
  });

  refresh();
  setInterval(refresh, 1000);
})();
