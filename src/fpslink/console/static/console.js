// Small behaviours every console page shares; no inline handlers (the CSP forbids them).
"use strict";
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset ? button.dataset.confirm : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
