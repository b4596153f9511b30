// The console's one script, served by keyward itself (no CDN). Pages work without it; with it,
// dialogs open in place, the create form says when it is ready, the secret copies in one click,
// and risky edits ask first. It never sends a request of its own.
"use strict";

function openDialog(dialog) {
  if (dialog && !dialog.open) dialog.showModal();
}

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open]");
  if (opener) {
    event.preventDefault();
    openDialog(document.getElementById(opener.dataset.open));
    return;
  }
  const closer = event.target.closest("[data-close]");
  if (closer) {
    event.preventDefault();
    closer.closest("dialog").close();
  }
});

for (const dialog of document.querySelectorAll("dialog[data-show]")) openDialog(dialog);

// A dialog that must be acknowledged (the copy-once secret) ignores Escape, and opens again if
// the browser closes it anyway; only Done leaves it. Leaving the page (Done, Back, a closed
// tab) blanks the secret first, so a page kept for Back holds no secret.
for (const dialog of document.querySelectorAll("dialog[data-acknowledge]")) {
  let done = false;
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  dialog.addEventListener("close", () => { if (!done) openDialog(dialog); });
  const blank = () => {
    done = true;
    for (const secret of dialog.querySelectorAll("[data-secret]")) secret.textContent = "";
  };
  for (const leave of dialog.querySelectorAll("[data-done]")) leave.addEventListener("click", blank);
  window.addEventListener("pagehide", blank);
}

// The create form: Create is enabled only when the form is valid.
const WILDCARDS = ["0.0.0.0/0", "::/0"];
for (const form of document.querySelectorAll("form[data-validate]")) {
  const submit = form.querySelector("[type=submit]");
  const field = (name) => form.elements.namedItem(name);
  const check = () => {
    const name = field("name").value.trim();
    const preset = field("preset") ? field("preset").value : "";
    const scopes = field("scopes").value.trim();
    const rate = field("rate_limit_per_minute").value.trim();
    const expires = field("expires_at").value;
    const rateOk = rate === "" || (/^\d+$/.test(rate) && +rate >= 1 && +rate <= 600);
    const tomorrow = field("expires_at").min;
    const expiresOk = expires === "" || expires >= tomorrow;
    submit.disabled = !(name && (preset || scopes) && rateOk && expiresOk);
    const ranges = field("allowed_cidrs").value.split(/[\s,]+/).filter(Boolean);
    form.querySelector("[data-wildcard]").hidden = !ranges.some((r) => WILDCARDS.includes(r));
  };
  form.addEventListener("input", check);
  form.addEventListener("change", check);
  check();
}

// Copy the secret; the icon turns to a check for two seconds.
for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent.trim();
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch {
      const range = document.createRange();
      range.selectNodeContents(document.getElementById(button.dataset.copy));
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      copied = document.execCommand("copy");
      selection.removeAllRanges();
    }
    const status = document.getElementById(button.dataset.status);
    if (!copied) {
      status.textContent = "Copy failed: select the key and press Ctrl+C.";
      return;
    }
    const icon = button.querySelector("[data-icon]");
    icon.textContent = "✓";
    button.classList.add("copied");
    status.textContent = "Copied";
    setTimeout(() => {
      icon.textContent = "⧉";
      button.classList.remove("copied");
      status.textContent = "";
    }, 2000);
  });
}

// An edit that changes scopes or allowed ranges asks first: live callers may break.
for (const form of document.querySelectorAll("form[data-confirm-changes]")) {
  const watched = form.dataset.confirmChanges.split(",");
  const initial = Object.fromEntries(watched.map((n) => [n, form.elements.namedItem(n).value]));
  const dialog = document.getElementById(form.dataset.confirmDialog);
  // A confirmation holds for the values it was given: typing again asks again.
  form.addEventListener("input", () => { delete form.dataset.confirmed; });
  form.addEventListener("submit", (event) => {
    const changed = watched.some((n) => form.elements.namedItem(n).value !== initial[n]);
    if (changed && form.dataset.confirmed !== "yes") {
      event.preventDefault();
      openDialog(dialog);
    }
  });
  dialog.querySelector("[data-confirm]").addEventListener("click", () => {
    form.dataset.confirmed = "yes";
    dialog.close();
    form.requestSubmit();
  });
}

// Forms that load a page show that they are working.
for (const form of document.querySelectorAll("form[data-loading]")) {
  form.addEventListener("submit", () => {
    document.getElementById(form.dataset.loading).hidden = false;
    document.querySelector("main").setAttribute("aria-busy", "true");
  });
}

// Examples are written for the address the console is served from.
for (const el of document.querySelectorAll("[data-origin]")) {
  el.textContent = el.textContent.replaceAll("{origin}", window.location.origin);
}
