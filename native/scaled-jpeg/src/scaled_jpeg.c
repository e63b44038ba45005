/*
 * Slidebank's scaled JPEG mosaic: several JPEG tiles, decoded by libjpeg-turbo
 * at 1/2, 1/4 or 1/8 of their size (the scaled inverse DCT, so the pixels that
 * would be thrown away are never computed) or at full size, laid out side by
 * side, cut to a rectangle and encoded as one JPEG. The tile engine uses it for
 * Deep Zoom tiles that a block of stored tiles one, two, four or eight times
 * finer holds pixel for pixel; everything else goes through sharp.
 *
 * Four N-API functions, run on libuv's thread pool:
 *   mosaic(tiles, across, tileWidth, tileHeight, denominator, quality) -> Promise<Buffer>
 *     the tiles at 1/denominator (2, 4 or 8), side by side, as one JPEG;
 *   crop(tiles, across, tileWidth, tileHeight, denominator, left, top, width, height, quality) -> Promise<Buffer>
 *     the rectangle (left, top, width, height) of that mosaic (denominator
 *     1, 2, 4 or 8), as one JPEG;
 *   decode(tiles, across, tileWidth, tileHeight, denominator, width, height) -> Promise<Buffer>
 *     the mosaic (denominator 1, 2, 4 or 8) as RGB pixels, cropped to
 *     width x height: a whole small level without its edge tiles' padding;
 *   encode(pixels, width, height, quality) -> Promise<Buffer>
 *     RGB pixels already decoded (from the decoded-tile cache) as one JPEG.
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
  /* decode(): no JPEG out. The output is the rectangle (left, top, width, height) of the mosaic. */
  int raw, left, top, width, height;
  /* encode(): the RGB pixels to encode, width x height, instead of tiles. */
  const unsigned char *input;
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

/* The job's width x height RGB pixels as its JPEG: 4:2:0, as sharp writes the other tiles. */
static void compress(Job *job, const unsigned char *pixels) {
  unsigned char *jpeg = NULL;
  unsigned long size = 0;
  if (tjCompress2(encoder, pixels, job->width, job->width * 3, job->height, SB_PIXELS_RGB, &jpeg, &size, SB_SUBSAMPLING_420, job->quality, 0) != 0) {
    fail(job, "cannot encode the tile", encoder);
    reset(&encoder);
    tjFree(jpeg);
    return;
  }
  job->jpeg = jpeg;
  job->jpeg_size = size;
}

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  if (!job->raw && !encoder && !(encoder = tjInitCompress())) return fail(job, "cannot start the JPEG encoder", NULL);
  if (job->input) return compress(job, job->input);
  if (!decoder && !(decoder = tjInitDecompress())) return fail(job, "cannot start the JPEG decoder", NULL);
  const int part_width = job->tile_width / job->denominator;
  const int part_height = job->tile_height / job->denominator;
  const int width = job->width;
  const int height = job->height;
  const int pitch = width * 3;
  unsigned char *pixels = malloc((size_t)pitch * height);
  /* Each tile is decoded here, then its part inside the rectangle copied. */
  unsigned char *part = malloc((size_t)part_width * part_height * 3);
  if (!pixels || !part) {
    free(pixels);
    free(part);
    return fail(job, "cannot allocate the mosaic", NULL);
  }
  for (int i = 0; i < job->count; i++) {
    /* Where the tile lies in the output; a tile the rectangle misses is not decoded. */
    const int x = (i % job->across) * part_width - job->left;
    const int y = (i / job->across) * part_height - job->top;
    const int x0 = x > 0 ? x : 0, y0 = y > 0 ? y : 0;
    const int x1 = x + part_width < width ? x + part_width : width;
    const int y1 = y + part_height < height ? y + part_height : height;
    if (x1 <= x0 || y1 <= y0) continue;
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
    for (int row = y0; row < y1; row++) {
      memcpy(pixels + (size_t)row * pitch + (size_t)x0 * 3, part + ((size_t)(row - y) * part_width + (size_t)(x0 - x)) * 3, (size_t)(x1 - x0) * 3);
    }
  }
  free(part);
  if (job->raw) {
    job->pixels = pixels;
    return;
  }
  compress(job, pixels);
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

static void queue(napi_env env, Job *job, napi_value hold, napi_value *promise) {
  /* The input's memory must outlive the work: hold it until it is done. */
  napi_create_reference(env, hold, 1, &job->tiles_ref);
  napi_value name;
  napi_create_promise(env, &job->deferred, promise);
  napi_create_string_utf8(env, "slidebank:scaled-jpeg", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
}

enum Mode { MOSAIC, CROP, DECODE };

static const char *const USAGE[] = {
    "mosaic(tiles, across, tileWidth, tileHeight, denominator, quality)",
    "crop(tiles, across, tileWidth, tileHeight, denominator, left, top, width, height, quality)",
    "decode(tiles, across, tileWidth, tileHeight, denominator, width, height)",
};

/* The three share their first five arguments: the tiles, how many a row, their size, and the denominator. */
static napi_value start(napi_env env, napi_callback_info info, enum Mode mode) {
  const size_t expected = mode == MOSAIC ? 6 : mode == CROP ? 10 : 7;
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != expected) return throw_type(env, USAGE[mode]);
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  uint32_t count = 0;
  if (!is_array || napi_get_array_length(env, argv[0], &count) != napi_ok || count < 1 || count > MAX_TILES) {
    return throw_type(env, "tiles must be an array of 1 to 256 Buffers");
  }
  Job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->count = (int)count;
  job->raw = mode == DECODE;
  int numbers[9];
  for (size_t i = 1; i < expected; i++) {
    if (!int_arg(env, argv[i], &numbers[i - 1])) {
      free(job);
      return throw_type(env, "every argument after the tiles must be a number");
    }
  }
  job->across = numbers[0];
  job->tile_width = numbers[1];
  job->tile_height = numbers[2];
  job->denominator = numbers[3];
  const int d = job->denominator;
  if (job->across < 1 || job->count % job->across != 0 || (d != 1 && d != 2 && d != 4 && d != 8) || (mode == MOSAIC && d == 1) ||
      job->tile_width < d || job->tile_height < d || job->tile_width % d != 0 || job->tile_height % d != 0 || job->tile_width > 8192 ||
      job->tile_height > 8192) {
    free(job);
    return throw_type(env, mode == MOSAIC ? "a mosaic needs whole rows of tiles and a denominator of 2, 4 or 8 that divides the tile size"
                                          : "whole rows of tiles are needed, and a denominator of 1, 2, 4 or 8 that divides the tile size");
  }
  const int full_width = job->across * (job->tile_width / d);
  const int full_height = (job->count / job->across) * (job->tile_height / d);
  if (mode == MOSAIC) {
    job->width = full_width;
    job->height = full_height;
    job->quality = numbers[4];
  } else if (mode == CROP) {
    job->left = numbers[4];
    job->top = numbers[5];
    job->width = numbers[6];
    job->height = numbers[7];
    job->quality = numbers[8];
  } else {
    job->width = numbers[4];
    job->height = numbers[5];
  }
  if (job->left < 0 || job->top < 0 || job->width < 1 || job->height < 1 || (long long)job->left + job->width > full_width ||
      (long long)job->top + job->height > full_height) {
    free(job);
    return throw_type(env, "the rectangle must lie inside the mosaic and hold at least one pixel");
  }
  if (!job->raw && (job->quality < 1 || job->quality > 100)) {
    free(job);
    return throw_type(env, "the quality must be 1-100");
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
  napi_value promise;
  queue(env, job, argv[0], &promise);
  return promise;
}

static napi_value encode(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 4) return throw_type(env, "encode(pixels, width, height, quality)");
  bool is_buffer = false;
  void *bytes;
  size_t length;
  int width, height, quality;
  if (napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[0], &bytes, &length) != napi_ok) {
    return throw_type(env, "pixels must be a Buffer");
  }
  if (!int_arg(env, argv[1], &width) || !int_arg(env, argv[2], &height) || !int_arg(env, argv[3], &quality)) {
    return throw_type(env, "width, height and quality must be numbers");
  }
  if (width < 1 || height < 1 || width > 65535 || height > 65535 || length != (size_t)width * height * 3) {
    return throw_type(env, "pixels must hold width x height RGB pixels, at most 65535 a side");
  }
  if (quality < 1 || quality > 100) return throw_type(env, "the quality must be 1-100");
  Job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->input = bytes;
  job->width = width;
  job->height = height;
  job->quality = quality;
  napi_value promise;
  queue(env, job, argv[0], &promise);
  return promise;
}

static napi_value mosaic(napi_env env, napi_callback_info info) {
  return start(env, info, MOSAIC);
}

static napi_value crop(napi_env env, napi_callback_info info) {
  return start(env, info, CROP);
}

static napi_value decode(napi_env env, napi_callback_info info) {
  return start(env, info, DECODE);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "mosaic", NAPI_AUTO_LENGTH, mosaic, NULL, &fn);
  napi_set_named_property(env, exports, "mosaic", fn);
  napi_create_function(env, "crop", NAPI_AUTO_LENGTH, crop, NULL, &fn);
  napi_set_named_property(env, exports, "crop", fn);
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
  napi_create_function(env, "encode", NAPI_AUTO_LENGTH, encode, NULL, &fn);
  napi_set_named_property(env, exports, "encode", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
