// The report's "Imprimer" button: the browser's own print (A4 rules are in preau.css).
document.querySelectorAll("[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));
