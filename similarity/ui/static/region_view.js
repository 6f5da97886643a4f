// The Search tab's region view: the body of gr.HTML(js_on_load=...), with Gradio's `element` and `trigger`.
// A click (or Enter/Space) on a numbered box, a card or "Whole photo" sends {index} (-1: the whole photo);
// a drag on the photo sends {box: [x0, y0, x1, y1]} as fractions of the photo. The HTML is re-rendered by
// the server on every change, so the listeners are delegated from `element`, which stays.
let start = null, moved = false;
const MIN_DRAG = 6;  // css px: less is a click, not a box

const frac = (photo, e) => {
  const r = photo.getBoundingClientRect();
  const x = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
  const y = Math.min(Math.max((e.clientY - r.top) / r.height, 0), 1);
  return {x, y, px: e.clientX, py: e.clientY};
};

element.addEventListener("click", (e) => {
  const pick = e.target.closest("[data-index]");
  if (!pick || moved) { moved = false; return; }
  trigger("region_select", {index: Number(pick.dataset.index)});
});

element.addEventListener("pointerdown", (e) => {
  const photo = e.target.closest(".region-photo");
  if (!photo || e.button !== 0) return;
  start = {photo, ...frac(photo, e)};
  moved = false;
});

element.addEventListener("pointermove", (e) => {
  if (!start) return;
  const now = frac(start.photo, e);
  if (!moved && Math.hypot(now.px - start.px, now.py - start.py) < MIN_DRAG) return;
  if (!moved) start.photo.setPointerCapture?.(e.pointerId);
  moved = true;
  const draft = start.photo.querySelector(".region-draft");
  Object.assign(draft.style, {
    display: "block",
    left: `${Math.min(start.x, now.x) * 100}%`, top: `${Math.min(start.y, now.y) * 100}%`,
    width: `${Math.abs(now.x - start.x) * 100}%`, height: `${Math.abs(now.y - start.y) * 100}%`,
  });
});

const finish = (e) => {
  if (!start) return;
  const {photo, x, y} = start;
  start = null;
  if (!moved) return;
  const now = frac(photo, e);
  photo.querySelector(".region-draft").style.display = "none";
  const box = [Math.min(x, now.x), Math.min(y, now.y), Math.max(x, now.x), Math.max(y, now.y)];
  if (box[2] - box[0] > 0.01 && box[3] - box[1] > 0.01) trigger("region_select", {box});
  setTimeout(() => { moved = false; }, 0);  // the click that follows a drag is not a pick
};
element.addEventListener("pointerup", finish);
element.addEventListener("pointercancel", () => { start = null; moved = false; });
