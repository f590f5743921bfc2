// Renders an asset list as thumbnails with a delete button each (Gallery and Mixed widgets).

/** Fills `grid` with one thumbnail per asset; `onDelete(asset)` is called by its button. */
export function renderAssets(grid, empty, assets, onDelete) {
  grid.replaceChildren(
    ...assets.map((asset) => {
      const figure = document.createElement("figure");
      figure.className = "thumb";
      figure.style.margin = "0";
      figure.dataset.objectKey = asset.objectKey;
      const isImage = String(asset.contentType).startsWith("image/");
      const img = document.createElement("img");
      img.alt = asset.name;
      if (isImage) img.src = asset.url;
      const caption = document.createElement("figcaption");
      caption.className = "name";
      caption.textContent = asset.name;
      caption.title = `${asset.name} (${asset.size} bytes)`;
      const del = document.createElement("button");
      del.type = "button";
      del.textContent = "×";
      del.setAttribute("aria-label", `Delete ${asset.name}`);
      del.addEventListener("click", () => onDelete(asset));
      figure.append(img, caption, del);
      return figure;
    }),
  );
  empty.hidden = assets.length > 0;
}
