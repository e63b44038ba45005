/* global window, document, sessionStorage, URLSearchParams */
/**
 * A DICOMweb viewer on an origin of its own, as a hospital would put Slim or
 * OHIF beside Slidebank: dicomweb-client fetches the series' metadata and
 * frames from the DICOMweb root the address names (`?dicomweb=…&study=…&series=…`,
 * as Slidebank's dicom.viewerUrl fills them in), with the bearer token the
 * page was given (sessionStorage `dicomwebToken`), and dicom-microscopy-viewer's
 * VolumeImageViewer draws the slide. `window.dicomwebViewer` lets the test
 * move the view and read back the pixels drawn.
 */
import * as DICOMwebClient from 'dicomweb-client';
import * as DICOMMicroscopyViewer from 'dicom-microscopy-viewer';

const params = new URLSearchParams(window.location.search);
const root = params.get('dicomweb');
const study = params.get('study');
const series = params.get('series');
const token = sessionStorage.getItem('dicomwebToken');
const status = document.getElementById('status');

const client = new DICOMwebClient.api.DICOMwebClient({ url: root, headers: token ? { Authorization: `Bearer ${token}` } : {} });

async function open() {
  const metadata = await client.retrieveSeriesMetadata({ studyInstanceUID: study, seriesInstanceUID: series });
  const images = metadata.map((item) => new DICOMMicroscopyViewer.metadata.VLWholeSlideMicroscopyImage({ metadata: item }));
  // As Slim does: the pyramid is the VOLUME and THUMBNAIL images; a LABEL or OVERVIEW would be shown apart.
  const pyramid = images.filter((image) => image.ImageType[2] === 'VOLUME' || image.ImageType[2] === 'THUMBNAIL');
  const errors = [];
  const viewer = new DICOMMicroscopyViewer.viewer.VolumeImageViewer({
    client,
    metadata: pyramid,
    errorInterceptor: (error) => {
      errors.push(String(error && error.message ? error.message : error));
      return error;
    },
  });
  viewer.render({ container: document.getElementById('viewport') });
  return { viewer, images, errors };
}

const opened = open();
opened.then(
  () => (status.textContent = 'open'),
  (error) => (status.textContent = `failed: ${error && error.message ? error.message : error}`),
);

/**
 * The canvases the map draws its layers on, composited as the screen shows
 * them (OpenLayers' export recipe), as RGBA; the overview map in the corner
 * is a control of its own and left out.
 */
function mapPixels(map) {
  const [width, height] = map.getSize();
  const ratio = window.devicePixelRatio;
  const out = document.createElement('canvas');
  out.width = Math.round(width * ratio);
  out.height = Math.round(height * ratio);
  const context = out.getContext('2d', { willReadFrequently: true });
  const canvases = [...map.getViewport().querySelectorAll('.ol-layer canvas, canvas.ol-layer')].filter((canvas) => !canvas.closest('.ol-overviewmap'));
  for (const canvas of canvases) {
    if (canvas.width === 0) continue;
    const opacity = canvas.parentNode.style.opacity || canvas.style.opacity;
    context.globalAlpha = opacity === '' ? 1 : Number(opacity);
    const transform = canvas.style.transform;
    const matrix = transform
      ? /^matrix\(([^(]*)\)$/.exec(transform)[1].split(',').map(Number)
      : [parseFloat(canvas.style.width) / canvas.width, 0, 0, parseFloat(canvas.style.height) / canvas.height, 0, 0];
    context.setTransform(...matrix);
    context.drawImage(canvas, 0, 0);
  }
  context.setTransform(1, 0, 0, 1, 0, 0);
  return { width: out.width, height: out.height, layers: canvases.length, data: Array.from(context.getImageData(0, 0, out.width, out.height).data) };
}

window.dicomwebViewer = {
  /** The instances the series' metadata lists: UID, Image Type, size and frames. */
  async instances() {
    const { images } = await opened;
    return images.map((image) => ({
      sopInstanceUid: image.SOPInstanceUID,
      imageType: image.ImageType,
      columns: image.TotalPixelMatrixColumns,
      rows: image.TotalPixelMatrixRows,
      frames: Number(image.NumberOfFrames),
    }));
  },
  async errors() {
    return (await opened).errors;
  },
  /** Whether the viewer corrects colours with the instances' ICC profiles, and how many it has. */
  async iccProfiles() {
    const { viewer } = await opened;
    // The viewer fetches the profiles (BulkData of the optical paths) after it opens: up to ten seconds for them.
    for (let waited = 0; viewer.getICCProfiles().length === 0 && waited < 10_000; waited += 100) await new Promise((resolve) => window.setTimeout(resolve, 100));
    return viewer.getICCProfiles().length;
  },
  /** The view's rotation as the viewer chose it from Image Orientation (Slide), in degrees. */
  async rotation() {
    const { viewer } = await opened;
    return (viewer.getMap().getView().getRotation() * 180) / Math.PI;
  },
  /**
   * Show full resolution (one slide pixel to one screen pixel) with slide
   * pixel (x, y) at the viewport's top left corner, unturned, and answer the
   * viewport's pixels once every tile in view is drawn. Map coordinates are
   * slide pixels with y downwards negated: the top edge of row 0 is y = -1
   * (dicom-microscopy-viewer's pyramid extent).
   */
  async region(x, y) {
    const { viewer } = await opened;
    const map = viewer.getMap();
    const view = map.getView();
    const [width, height] = map.getSize();
    const drawn = new Promise((resolve) => map.once('rendercomplete', resolve));
    view.setRotation(0);
    view.setResolution(1);
    view.setCenter([x + width / 2, -1 - y - height / 2]);
    map.renderSync();
    await drawn;
    return { ...mapPixels(map), resolution: view.getResolution(), center: view.getCenter(), topLeft: map.getCoordinateFromPixel([0, 0]) };
  },
};
