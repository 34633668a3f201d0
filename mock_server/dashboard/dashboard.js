"use strict";
// The dashboard's script: buttons and the scenario form call the control API (/__admin) and reload
// the page; timelines get their proportions; the page reloads itself while tasks run. No
// framework, no network but this fake.
(() => {
  const body = document.body;
  const actionError = document.getElementById("action-error");
  let editing = false;  // someone is filling a form: a refresh would throw their input away

  async function admin(method, path, data) {
    const response = await fetch("/__admin/" + path, {
      method, headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: data === undefined ? undefined : JSON.stringify(data),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(answer.message ? `${answer.code}: ${answer.message}` : `HTTP ${response.status}`);
    }
    return answer;
  }

  // A control-API call from a button: reload on success, say what went wrong otherwise.
  function act(button, call, where = actionError) {
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        await call();
        location.reload();
      } catch (error) {
        where.textContent = error.message;
        where.hidden = false;
        button.disabled = false;
      }
    });
  }

  for (const button of document.querySelectorAll("[data-advance]")) {
    act(button, () => admin("POST", "clock/advance", {seconds: Number(button.dataset.advance)}));
  }
  for (const button of document.querySelectorAll("[data-clock]")) {
    act(button, () => admin("POST", "clock/" + button.dataset.clock));
  }
  for (const button of document.querySelectorAll("[data-reset]")) {
    act(button, async () => {
      if (!confirm("Reset the fake? Tasks, scenarios, usage and the request journal go.")) throw new Error("Reset cancelled.");
      return admin("POST", "reset");
    });
  }
  for (const button of document.querySelectorAll("[data-remove-scenario]")) {
    act(button, () => admin("DELETE", "scenarios/" + encodeURIComponent(button.dataset.removeScenario)));
  }

  // Copy: a key is fetched in full only when asked for (the page shows it masked).
  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = Object.assign(document.createElement("textarea"), {value: text});
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
  }
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      try {
        let text = button.dataset.copyText;
        if (button.dataset.copyKey !== undefined) {
          const {keys} = await admin("GET", "keys");
          text = keys.find((k) => k.key_id === button.dataset.copyKey).key;
        }
        await copy(text);
        button.textContent = "copied";
      } catch (error) {
        button.textContent = "copy failed";
        button.title = error.message;
      }
    });
  }

  // Filters apply as soon as one is chosen.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  // The scenario form: the chosen effect's fields only; what is filled in, as JSON, to POST /__admin/scenarios.
  const form = document.getElementById("scenario-form");
  if (form) {
    const chooser = form.querySelector("[data-effect-type]");
    const showEffect = () => {
      for (const fields of form.querySelectorAll("[data-effect]")) fields.hidden = fields.dataset.effect !== chooser.value;
    };
    chooser.addEventListener("change", showEffect);
    showEffect();
    form.addEventListener("input", () => { editing = true; });
    const read = (control) => {
      if (control.dataset.type === "boolean") return control.checked ? true : undefined;
      if (control.value === "") return undefined;
      return control.dataset.type === "string" ? control.value : Number(control.value);
    };
    const failure = form.querySelector(".error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const scenario = {match: {}, effect: {type: chooser.value}};
      for (const control of form.querySelectorAll("[data-field]")) {
        if (control.closest("[data-effect]")?.hidden) continue;
        const value = read(control);
        if (value === undefined) continue;
        const [group, name] = control.dataset.field.includes(".") ? control.dataset.field.split(".") : [null, control.dataset.field];
        if (group) scenario[group][name] = value; else scenario[name] = value;
      }
      if (!Object.keys(scenario.match).length) delete scenario.match;
      try {
        await admin("POST", "scenarios", scenario);
        location.reload();
      } catch (error) {
        failure.textContent = error.message;
        failure.hidden = false;
      }
    });
  }

  // Timelines: each phase as wide as it was long (a zero-length phase still shows its name).
  for (const phase of document.querySelectorAll(".timeline .phase[data-seconds]")) {
    phase.style.flexGrow = String(Math.max(Number(phase.dataset.seconds), 0.05));
  }

  // While tasks run, show them moving: reload now and then, unless a form is being filled in.
  const every = Number(body.dataset.refreshMs || 0);
  if (every > 0) {
    setInterval(() => {
      const focused = document.activeElement;
      if (!editing && !(focused && focused.closest("form"))) location.reload();
    }, every);
  }
})();
