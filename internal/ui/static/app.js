// kubemon's web UI (placeholder until the UI lands).
document.getElementById("app").textContent = "kubemon UI";
