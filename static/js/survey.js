/* Balance 360 — the rater's survey page: progress indicator and a draft kept in this browser.
 *
 * The draft lives in localStorage only, never on the server, so no stored row ever pairs
 * a rater with answers before they submit. It is keyed by the page's per-session key
 * (never the link token) and removed on the thank-you page after a successful submit.
 */
(function () {
  "use strict";

  var PREFIX = "b360-survey-draft:";
  // Drafts left behind (a survey never submitted) are dropped after 60 days.
  var MAX_AGE_MS = 60 * 24 * 60 * 60 * 1000;

  function openStorage() {
    try {
      var storage = window.localStorage;
      storage.getItem(PREFIX);
      return storage;
    } catch (error) {
      return null; // storage disabled: the page still works, without a draft
    }
  }

  var storage = openStorage();

  function dropOldDrafts() {
    if (!storage) return;
    var now = Date.now();
    for (var i = storage.length - 1; i >= 0; i--) {
      var name = storage.key(i);
      if (!name || name.indexOf(PREFIX) !== 0) continue;
      try {
        var draft = JSON.parse(storage.getItem(name));
        if (!draft || typeof draft.saved !== "number" || now - draft.saved > MAX_AGE_MS) storage.removeItem(name);
      } catch (error) {
        storage.removeItem(name);
      }
    }
  }

  dropOldDrafts();

  var done = document.getElementById("survey-done");
  if (done && storage) {
    storage.removeItem(PREFIX + done.getAttribute("data-draft-key"));
  }

  var form = document.getElementById("survey-form");
  if (!form) return;
  var draftName = PREFIX + form.getAttribute("data-draft-key");

  function answerFields() {
    var fields = [];
    for (var i = 0; i < form.elements.length; i++) {
      var field = form.elements[i];
      if (field.name && (field.name.indexOf("rating-") === 0 || field.name.indexOf("comment-") === 0)) fields.push(field);
    }
    return fields;
  }

  function read() {
    var values = {};
    answerFields().forEach(function (field) {
      if (field.type === "radio") {
        if (field.checked) values[field.name] = field.value;
      } else {
        values[field.name] = field.value;
      }
    });
    return values;
  }

  function write(values) {
    answerFields().forEach(function (field) {
      if (!Object.prototype.hasOwnProperty.call(values, field.name)) return;
      if (field.type === "radio") {
        field.checked = values[field.name] === field.value;
      } else if (typeof values[field.name] === "string") {
        field.value = values[field.name];
      }
    });
  }

  function save() {
    if (!storage) return;
    try {
      storage.setItem(draftName, JSON.stringify({ saved: Date.now(), values: read() }));
    } catch (error) {
      // Storage full or refused: answers stay in the page, only the draft is lost.
    }
  }

  var progressBar = document.getElementById("survey-progress-bar");
  var progressCount = form.querySelector("[data-progress-count]");

  function showProgress() {
    var groups = {};
    var answered = {};
    answerFields().forEach(function (field) {
      if (field.type !== "radio") return;
      groups[field.name] = true;
      if (field.checked) answered[field.name] = true;
    });
    var count = Object.keys(answered).length;
    progressBar.max = Object.keys(groups).length;
    progressBar.value = count;
    progressCount.textContent = String(count);
  }

  if (storage) {
    if (form.hasAttribute("data-from-post")) {
      // The server sent back exactly what was posted (with errors): that is the draft now.
      save();
    } else {
      try {
        var draft = JSON.parse(storage.getItem(draftName) || "null");
        if (draft && draft.values) write(draft.values);
      } catch (error) {
        storage.removeItem(draftName);
      }
    }
  }
  showProgress();

  form.addEventListener("change", function () {
    showProgress();
    save();
  });
  form.addEventListener("input", save);

  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
