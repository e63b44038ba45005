/* global window, document, Image, DOMParser, fetch */
/**
 * Added to a Slidebank portal page: the pixels of a region of a slide at full
 * resolution as the browser decodes its Deep Zoom tiles, drawn side by side
 * on a canvas at their places in the level (the descriptor's tile size and
 * overlap) and read back as RGBA.
 */
window.deepZoomRegion = async function deepZoomRegion(slideId, x, y, width, height) {
  const descriptor = new DOMParser().parseFromString(await (await fetch(`/tiles/${slideId}.dzi`)).text(), 'application/xml').documentElement;
  const tileSize = Number(descriptor.getAttribute('TileSize'));
  const overlap = Number(descriptor.getAttribute('Overlap'));
  const format = descriptor.getAttribute('Format');
  const size = descriptor.getElementsByTagName('Size')[0];
  const level = Math.ceil(Math.log2(Math.max(Number(size.getAttribute('Width')), Number(size.getAttribute('Height')))));
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const tiles = [];
  for (let row = Math.floor(y / tileSize); row * tileSize < y + height; row++) {
    for (let col = Math.floor(x / tileSize); col * tileSize < x + width; col++) {
      tiles.push(
        new Promise((resolve, reject) => {
          const image = new Image();
          image.onload = () => resolve({ image, col, row });
          image.onerror = () => reject(new Error(`tile ${level}/${col}_${row} did not load`));
          image.src = `/tiles/${slideId}_files/${level}/${col}_${row}.${format}`;
        }),
      );
    }
  }
  for (const { image, col, row } of await Promise.all(tiles)) {
    // A tile starts `overlap` pixels before its place on the grid, except in the first column or row.
    const left = col * tileSize - (col > 0 ? overlap : 0);
    const top = row * tileSize - (row > 0 ? overlap : 0);
    context.drawImage(image, left - x, top - y);
  }
  return { width, height, tileSize, overlap, level, tiles: tiles.length, data: Array.from(context.getImageData(0, 0, width, height).data) };
};
