// Product search page: text or image queries, a grid of hits, and the "why" view of a hit
// (cross-attention of the query words over the product image). Same-origin requests only.
"use strict";

const $ = (id) => document.getElementById(id);
let lastText = "";

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function getJson(response) {
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function hitTile(hit, rank) {
  const tile = document.createElement("div");
  tile.className = "hit";
  const img = document.createElement("img");
  img.src = "thumb/" + hit.row;
  img.alt = hit.product;
  const caption = document.createElement("div");
  caption.className = "caption";
  const itm = hit.itm === null ? "" : "  itm " + hit.itm.toFixed(2);
  caption.textContent = "#" + rank + " " + hit.product + "  itc " + hit.score.toFixed(3) + itm;
  tile.append(img, caption);
  if (lastText) {
    const button = document.createElement("button");
    button.className = "why-button";
    button.textContent = "why?";
    button.addEventListener("click", () => showWhy(hit.row));
    tile.append(button);
  }
  return tile;
}

function showHits(hits) {
  $("grid").replaceChildren(...hits.map((hit, i) => hitTile(hit, i + 1)));
  $("why").hidden = true;
  setStatus(hits.length + " products");
}

async function searchText(event) {
  event.preventDefault();
  const params = new URLSearchParams({ q: $("q").value, k: $("k").value,
                                       rerank: $("rerank").value });
  setStatus("searching...");
  try {
    const body = await getJson(await fetch("search?" + params));
    lastText = body.query;
    showHits(body.hits);
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function searchImage(event) {
  event.preventDefault();
  const file = $("image").files[0];
  if (!file) return setStatus("choose an image file first", true);
  setStatus("searching...");
  try {
    const response = await fetch("search/image?k=" + encodeURIComponent($("k").value),
                                 { method: "POST", body: file });
    const body = await getJson(response);
    lastText = "";  // "why" explains a text query against an image
    showHits(body.hits);
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function showWhy(row) {
  const params = new URLSearchParams({ q: lastText, row: row });
  try {
    const body = await getJson(await fetch("why?" + params));
    $("why-image").src = body.png;
    $("why-title").textContent = "why " + body.product + " matches \"" + body.query + "\"";
    // Min-max shading: the score is a peak (max) or a negative entropy, by the config.
    const scores = body.words.map((w) => w.score);
    const low = Math.min(...scores), range = Math.max(1e-9, Math.max(...scores) - low);
    $("why-words").replaceChildren(...body.words.map((w) => {
      const span = document.createElement("span");
      span.className = "word";
      span.textContent = w.word + " " + w.score.toFixed(3);
      span.style.background = "rgba(255, 80, 0, " + (0.15 + 0.85 * (w.score - low) / range) + ")";
      return span;
    }));
    $("why").hidden = false;
    $("why").scrollIntoView();
  } catch (err) {
    setStatus(err.message, true);
  }
}

$("text-form").addEventListener("submit", searchText);
$("image-form").addEventListener("submit", searchImage);
