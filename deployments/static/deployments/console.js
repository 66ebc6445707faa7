/* The console's few behaviours that need JavaScript: upload progress, confirmation dialogs,
 * copy buttons and the deploy form's live name check. A static file, never inline, so the
 * Content-Security-Policy can forbid inline scripts. Everything still works as plain forms. */
(function () {
  "use strict";

  function formatBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  // Upload with a progress bar; the server answers with the upload area re-rendered
  // (the validation result, or the form with its errors next to the fields).
  function upload(form) {
    var box = document.getElementById("upload-progress");
    var bar = document.getElementById("upload-progress-bar");
    var label = document.getElementById("upload-progress-label");
    var button = form.querySelector("button[type=submit]");
    var input = form.querySelector("input[type=file]");
    var fileSize = input && input.files.length ? input.files[0].size : null;
    var previous = document.getElementById("upload-result");
    if (previous) previous.classList.add("stale");
    box.hidden = false;
    bar.max = 100;
    bar.value = 0;
    label.textContent = "Uploading… 0%";
    label.removeAttribute("aria-busy");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var percent = Math.round((e.loaded * 100) / e.total);
      bar.value = percent;
      label.textContent = "Uploading… " + percent + "% of " + formatBytes(fileSize || e.total);
    });
    xhr.upload.addEventListener("load", function () {
      bar.value = 100;
      label.textContent = "Uploaded 100%. Validating the model in a sandbox…";
      label.setAttribute("aria-busy", "true");
    });
    xhr.addEventListener("load", function () {
      label.removeAttribute("aria-busy");
      if (xhr.responseURL && xhr.responseURL.indexOf("/accounts/login/") !== -1) {
        window.location.reload();
        return;
      }
      if (xhr.status === 200 || xhr.status === 422) {
        var size = fileSize !== null ? " (" + formatBytes(fileSize) + ")" : "";
        document.getElementById("upload-area").outerHTML = xhr.responseText;
        if (xhr.status === 200) label.textContent = "Uploaded 100%" + size + " and validated.";
        else if (fileSize === null) label.textContent = "No file was chosen: pick the file you saved the model to, then upload.";
        else label.textContent = "Uploaded 100%" + size + ", but it was refused: the reason is below.";
        box.dataset.state = xhr.status === 200 ? "validated" : "refused";
        return;
      }
      button.disabled = false;
      button.removeAttribute("aria-busy");
      box.dataset.state = "error";
      label.textContent = xhr.status === 403
        ? "Not allowed: uploading needs the deployer role."
        : "The upload failed (HTTP " + xhr.status + "). Nothing was stored; try again.";
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      box.dataset.state = "error";
      label.textContent = "The connection broke during the upload. Nothing was stored; try again.";
    });
    xhr.send(new FormData(form));
  }

  // Confirmation before actions that remove something (forms with data-confirm).
  var pending = null;

  function confirmFirst(form, submitter) {
    var dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-message").textContent = form.dataset.confirm;
    document.getElementById("confirm-ok").textContent = form.dataset.confirmButton || "Yes, go ahead";
    pending = { form: form, submitter: submitter };
    dialog.showModal();
  }

  function needsConfirmation(form) {
    if (!form.dataset.confirm || form.dataset.confirmed === "yes") return false;
    if (form.dataset.confirmBelow === undefined) return true;
    var field = form.elements[form.dataset.confirmField];
    return Number(field.value) < Number(form.dataset.confirmBelow);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (needsConfirmation(form)) {
      event.preventDefault();
      confirmFirst(form, event.submitter);
    } else if (form.matches("form[data-upload]")) {
      event.preventDefault();
      upload(form);
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.id === "confirm-ok" && pending) {
      var p = pending;
      pending = null;
      document.getElementById("confirm-dialog").close();
      p.form.dataset.confirmed = "yes";
      p.form.requestSubmit(p.submitter || undefined);
    } else if (target.id === "confirm-cancel") {
      pending = null;
      document.getElementById("confirm-dialog").close();
    }

    var copy = target.closest("button[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.dataset.copy);
      var done = function (text) {
        copy.textContent = text;
        setTimeout(function () { copy.textContent = "Copy"; }, 2000);
      };
      var select = function () {
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        done("Selected: press Ctrl+C");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent).then(function () { done("Copied"); }, select);
      } else {
        select();
      }
    }
  });

  // A banner such as "Deploying iris-prod." or "Undeploy requested." tells what was asked; once
  // the live status shows the deployment has moved on, the banner is old news and goes.
  var statusSeen = null;
  function statusNow() {
    var badge = document.getElementById("status");
    return badge ? badge.dataset.status : null;
  }
  document.addEventListener("DOMContentLoaded", function () { statusSeen = statusNow(); });
  document.addEventListener("htmx:afterSettle", function () {
    var now = statusNow();
    if (now === null || statusSeen === null || now === statusSeen) return;
    statusSeen = now;
    document.querySelectorAll(".messages .message.success, .messages .message.info").forEach(
      function (banner) { banner.remove(); });
  });

  // The deploy form's name check (an htmx fragment) also marks the input valid or invalid.
  document.addEventListener("htmx:afterSettle", function () {
    var check = document.getElementById("name-check");
    var input = document.getElementById("id_name");
    if (!check || !input) return;
    if (check.dataset.valid === "false") input.setAttribute("aria-invalid", "true");
    else if (check.dataset.valid === "true") input.setAttribute("aria-invalid", "false");
    else input.removeAttribute("aria-invalid");
  });

  // A range input with data-output shows its value next to it (the traffic panel's weight).
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input || !input.dataset || !input.dataset.output) return;
    var output = document.getElementById(input.dataset.output);
    if (output) output.value = input.value;
  });
})();
