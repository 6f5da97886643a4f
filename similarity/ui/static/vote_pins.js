// 👍/👎 on every result picture: the body of the vote strip's gr.HTML(js_on_load=...), with Gradio's
// `element` and `trigger`. The server renders the strip as data only (one <li> per result, in gallery order:
// id, title, the chip's vote); this script pins a 👍/👎 pair on each picture of #results-gallery, as a sibling
// of the picture's button (real buttons, in tab order right after their picture, never nested in it). A pair is
// pinned only where the picture's caption starts with the entry's title, so a gallery that has changed before
// the strip has never gets another product's buttons. Both re-render on the server's updates: a
// MutationObserver syncs (idempotently) on the next frame.
const VOTES = [["like", "👍", "More like"], ["dislike", "👎", "Less like"]];
let gallery = null, queued = false;

const entries = () => [...element.querySelectorAll("li[data-id]")].map((li) => li.dataset);

const pin = (entry) => {
  const box = document.createElement("div");
  box.className = "vote-pin";
  box.dataset.key = `${entry.id}|${entry.vote || ""}`;
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", `Rate ${entry.title}`);
  for (const [vote, icon, verb] of VOTES) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.vote = vote;
    b.dataset.id = entry.id;
    b.setAttribute("aria-pressed", String(entry.vote === vote));
    b.setAttribute("aria-label", `${verb} ${entry.title}`);
    b.title = `${verb} this`;
    b.textContent = icon;
    box.append(b);
  }
  return box;
};

const sync = () => {
  queued = false;
  if (!gallery) return;
  const data = entries();
  gallery.querySelectorAll(".gallery-item").forEach((item, n) => {
    const old = item.querySelector(":scope > .vote-pin");
    const entry = data[n];
    const caption = item.querySelector(".caption-label")?.textContent || "";
    const fits = entry && (caption === entry.title || caption.startsWith(`${entry.title} · `));
    const key = fits ? `${entry.id}|${entry.vote || ""}` : null;
    if (old && old.dataset.key === key) return;
    const focused = old && old.contains(document.activeElement) ? document.activeElement.dataset.vote : null;
    old?.remove();
    if (!key) return;
    const fresh = pin(entry);
    item.append(fresh);
    if (focused) fresh.querySelector(`button[data-vote=${focused}]`)?.focus();  // keep the keyboard's place
  });
};

const later = () => { if (!queued) { queued = true; requestAnimationFrame(sync); } };

const attach = () => {
  gallery = document.getElementById("results-gallery");
  if (!gallery) { setTimeout(attach, 200); return; }
  gallery.addEventListener("click", (e) => {
    const b = e.target.closest(".vote-pin button[data-vote]");
    if (!b) return;
    e.stopPropagation();
    trigger("vote", {id: b.dataset.id, vote: b.dataset.vote});
  });
  new MutationObserver(later).observe(gallery, {childList: true, subtree: true, characterData: true});
  later();
};

new MutationObserver(later).observe(element, {childList: true, subtree: true, attributes: true});
attach();
