/*
 * Slidebank's scaled JPEG mosaic: several JPEG tiles, decoded by libjpeg-turbo
 * at 1/2, 1/4 or 1/8 of their size (the scaled inverse DCT, so the pixels that
 * would be thrown away are never computed), laid out side by side and encoded
 * as one JPEG. The tile engine uses it for Deep Zoom tiles that are exactly a
 * block of stored tiles two, four or eight times finer; everything else goes
 * through sharp.
 *
 * Two N-API functions, run on libuv's thread pool:
 *   mosaic(tiles, across, tileWidth, tileHeight, denominator, quality) -> Promise<Buffer>
 *     the tiles at 1/denominator (2, 4 or 8), side by side, as one JPEG;
 *   decode(tiles, across, tileWidth, tileHeight, denominator, width, height) -> Promise<Buffer>
 *     the same mosaic (denominator 1, 2, 4 or 8) as RGB pixels, cropped to
 *     width x height: a whole small level without its edge tiles' padding.
 * Any decoder warning is a failure: the caller then takes the general path,
 * which decides.
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "turbojpeg-api.h"

#define MAX_TILES 256

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref tiles_ref;
  int count, across, tile_width, tile_height, denominator, quality;
  /* decode(): no JPEG out, pixels cropped to width x height. */
  int raw, width, height;
  unsigned char *pixels;
  const unsigned char *data[MAX_TILES];
  unsigned long sizes[MAX_TILES];
  unsigned char *jpeg;
  unsigned long jpeg_size;
  char error[256];
} Job;

/* TurboJPEG handles are not thread-safe; each pool thread keeps its own. */
static _Thread_local tjhandle decoder = NULL;
static _Thread_local tjhandle encoder = NULL;

static void fail(Job *job, const char *what, tjhandle handle) {
  snprintf(job->error, sizeof job->error, "%s (%s)", what, handle ? tjGetErrorStr2(handle) : "out of memory");
}

/* After an error a handle can keep the failed stream's state (its tables, say) and fail the next call: start afresh. */
static void reset(tjhandle *handle) {
  if (*handle) tjDestroy(*handle);
  *handle = NULL;
}

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  if (!decoder && !(decoder = tjInitDecompress())) return fail(job, "cannot start the JPEG decoder", NULL);
  if (!job->raw && !encoder && !(encoder = tjInitCompress())) return fail(job, "cannot start the JPEG encoder", NULL);
  const int part_width = job->tile_width / job->denominator;
  const int part_height = job->tile_height / job->denominator;
  const int width = job->width;
  const int height = job->height;
  const int pitch = width * 3;
  unsigned char *pixels = malloc((size_t)pitch * height);
  /* Each tile is decoded here, then its visible part copied: tiles at the right and bottom edges are cropped. */
  unsigned char *part = malloc((size_t)part_width * part_height * 3);
  if (!pixels || !part) {
    free(pixels);
    free(part);
    return fail(job, "cannot allocate the mosaic", NULL);
  }
  for (int i = 0; i < job->count; i++) {
    int w, h, subsampling, colourspace;
    if (tjDecompressHeader3(decoder, job->data[i], job->sizes[i], &w, &h, &subsampling, &colourspace) != 0) {
      snprintf(job->error, sizeof job->error, "tile %d of %d: %s", i + 1, job->count, tjGetErrorStr2(decoder));
      reset(&decoder);
      goto failed;
    }
    if (w != job->tile_width || h != job->tile_height) {
      snprintf(job->error, sizeof job->error, "tile %d of %d is %dx%d, not %dx%d", i + 1, job->count, w, h, job->tile_width, job->tile_height);
      goto failed;
    }
    if (tjDecompress2(decoder, job->data[i], job->sizes[i], part, part_width, part_width * 3, part_height, SB_PIXELS_RGB, SB_STOP_ON_WARNING) != 0) {
      snprintf(job->error, sizeof job->error, "tile %d of %d: %s", i + 1, job->count, tjGetErrorStr2(decoder));
      reset(&decoder);
      goto failed;
    }
    const int x = (i % job->across) * part_width;
    const int y = (i / job->across) * part_height;
    const int visible_width = x + part_width <= width ? part_width : width - x;
    const int visible_height = y + part_height <= height ? part_height : height - y;
    for (int row = 0; row < visible_height; row++) {
      memcpy(pixels + (size_t)(y + row) * pitch + (size_t)x * 3, part + (size_t)row * part_width * 3, (size_t)visible_width * 3);
    }
  }
  free(part);
  if (job->raw) {
    job->pixels = pixels;
    return;
  }
  unsigned char *jpeg = NULL;
  unsigned long size = 0;
  if (tjCompress2(encoder, pixels, width, pitch, height, SB_PIXELS_RGB, &jpeg, &size, SB_SUBSAMPLING_420, job->quality, 0) != 0) {
    fail(job, "cannot encode the tile", encoder);
    reset(&encoder);
    tjFree(jpeg);
  } else {
    job->jpeg = jpeg;
    job->jpeg_size = size;
  }
  free(pixels);
  return;

failed:
  free(part);
  free(pixels);
}

static void free_pixels(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result = NULL;
  if (status == napi_ok && job->jpeg) {
    void *copy;
    status = napi_create_buffer_copy(env, job->jpeg_size, job->jpeg, &copy, &result);
  } else if (status == napi_ok && job->pixels) {
    /* The pixels become the Buffer's memory, freed with it. */
    status = napi_create_external_buffer(env, (size_t)job->width * job->height * 3, job->pixels, free_pixels, NULL, &result);
    if (status == napi_ok) job->pixels = NULL;
  }
  if (status == napi_ok && result) {
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message, error;
    napi_create_string_utf8(env, job->error[0] ? job->error : "scaled JPEG mosaic failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  tjFree(job->jpeg);
  free(job->pixels);
  napi_delete_reference(env, job->tiles_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static int int_arg(napi_env env, napi_value value, int *out) {
  return napi_get_value_int32(env, value, out) == napi_ok;
}

/* mosaic() and decode() share their arguments but the last: quality, or the width and height to crop to. */
static napi_value start(napi_env env, napi_callback_info info, int raw) {
  const size_t expected = raw ? 7 : 6;
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != expected) {
    return throw_type(env, raw ? "decode(tiles, across, tileWidth, tileHeight, denominator, width, height)"
                               : "mosaic(tiles, across, tileWidth, tileHeight, denominator, quality)");
  }
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  uint32_t count = 0;
  if (!is_array || napi_get_array_length(env, argv[0], &count) != napi_ok || count < 1 || count > MAX_TILES) {
    return throw_type(env, "tiles must be an array of 1 to 256 Buffers");
  }
  Job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->count = (int)count;
  job->raw = raw;
  if (!int_arg(env, argv[1], &job->across) || !int_arg(env, argv[2], &job->tile_width) || !int_arg(env, argv[3], &job->tile_height) ||
      !int_arg(env, argv[4], &job->denominator) || (raw ? !int_arg(env, argv[5], &job->width) || !int_arg(env, argv[6], &job->height) : !int_arg(env, argv[5], &job->quality))) {
    free(job);
    return throw_type(env, raw ? "across, tileWidth, tileHeight, denominator, width and height must be numbers"
                               : "across, tileWidth, tileHeight, denominator and quality must be numbers");
  }
  const int d = job->denominator;
  if (job->across < 1 || job->count % job->across != 0 || (d != 2 && d != 4 && d != 8 && !(raw && d == 1)) || job->tile_width < d ||
      job->tile_height < d || job->tile_width % d != 0 || job->tile_height % d != 0 || job->tile_width > 8192 || job->tile_height > 8192) {
    free(job);
    return throw_type(env, raw ? "a decode needs whole rows of tiles and a denominator of 1, 2, 4 or 8 that divides the tile size"
                               : "a mosaic needs whole rows of tiles, a denominator of 2, 4 or 8 that divides the tile size, and a quality of 1-100");
  }
  const int full_width = job->across * (job->tile_width / d);
  const int full_height = (job->count / job->across) * (job->tile_height / d);
  if (raw) {
    if (job->width < 1 || job->height < 1 || job->width > full_width || job->height > full_height) {
      free(job);
      return throw_type(env, "width and height must be at least 1 and at most the mosaic's size");
    }
  } else {
    if (job->quality < 1 || job->quality > 100) {
      free(job);
      return throw_type(env, "a mosaic needs whole rows of tiles, a denominator of 2, 4 or 8 that divides the tile size, and a quality of 1-100");
    }
    job->width = full_width;
    job->height = full_height;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    bool is_buffer = false;
    void *bytes;
    size_t length;
    if (napi_get_element(env, argv[0], i, &element) != napi_ok || napi_is_buffer(env, element, &is_buffer) != napi_ok || !is_buffer ||
        napi_get_buffer_info(env, element, &bytes, &length) != napi_ok || length == 0) {
      free(job);
      return throw_type(env, "every tile must be a non-empty Buffer");
    }
    job->data[i] = bytes;
    job->sizes[i] = length;
  }
  /* The tiles' memory must outlive the work: hold the array until it is done. */
  napi_create_reference(env, argv[0], 1, &job->tiles_ref);
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "slidebank:scaled-jpeg", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static napi_value mosaic(napi_env env, napi_callback_info info) {
  return start(env, info, 0);
}

static napi_value decode(napi_env env, napi_callback_info info) {
  return start(env, info, 1);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "mosaic", NAPI_AUTO_LENGTH, mosaic, NULL, &fn);
  napi_set_named_property(env, exports, "mosaic", fn);
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
