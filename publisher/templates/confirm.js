// One-step confirmation: a person who opens the link in a browser is confirmed at
// once, by this script posting the page's form. A link scanner that only fetches
// the address (GET or HEAD) runs no script, and so confirms nobody; without
// scripts, the button does the same.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autosubmit]");
  if (form && document.visibilityState !== "hidden") {
    form.querySelector("button").disabled = true;
    form.submit();
  }
});
