/*
 * Slidebank's scaled JPEG mosaic: several JPEG tiles, decoded by libjpeg-turbo
 * at 1/2, 1/4 or 1/8 of their size (the scaled inverse DCT, so the pixels that
 * would be thrown away are never computed), laid out side by side and encoded
 * as one JPEG. The tile engine uses it for Deep Zoom tiles that are exactly a
 * block of stored tiles two, four or eight times finer; everything else goes
 * through sharp.
 *
 * One N-API function, mosaic(tiles, across, tileWidth, tileHeight, denominator,
 * quality) -> Promise<Buffer>, run on libuv's thread pool. Any decoder warning
 * is a failure: the caller then takes the general path, which decides.
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define MAX_TILES 64

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref tiles_ref;
  int count, across, tile_width, tile_height, denominator, quality;
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
  if (!encoder && !(encoder = tjInitCompress())) return fail(job, "cannot start the JPEG encoder", NULL);
  const int down = (job->count + job->across - 1) / job->across;
  const int part_width = job->tile_width / job->denominator;
  const int part_height = job->tile_height / job->denominator;
  const int width = part_width * job->across;
  const int height = part_height * down;
  const int pitch = width * 3;
  unsigned char *pixels = malloc((size_t)pitch * height);
  if (!pixels) return fail(job, "cannot allocate the mosaic", NULL);
  for (int i = 0; i < job->count; i++) {
    int w, h, subsampling, colourspace;
    if (tjDecompressHeader3(decoder, job->data[i], job->sizes[i], &w, &h, &subsampling, &colourspace) != 0) {
      snprintf(job->error, sizeof job->error, "tile %d of %d: %s", i + 1, job->count, tjGetErrorStr2(decoder));
      reset(&decoder);
      free(pixels);
      return;
    }
    if (w != job->tile_width || h != job->tile_height) {
      snprintf(job->error, sizeof job->error, "tile %d of %d is %dx%d, not %dx%d", i + 1, job->count, w, h, job->tile_width, job->tile_height);
      free(pixels);
      return;
    }
    unsigned char *target = pixels + (size_t)(i / job->across) * part_height * pitch + (size_t)(i % job->across) * part_width * 3;
    if (tjDecompress2(decoder, job->data[i], job->sizes[i], target, part_width, pitch, part_height, TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
      snprintf(job->error, sizeof job->error, "tile %d of %d: %s", i + 1, job->count, tjGetErrorStr2(decoder));
      reset(&decoder);
      free(pixels);
      return;
    }
  }
  unsigned char *jpeg = NULL;
  unsigned long size = 0;
  if (tjCompress2(encoder, pixels, width, pitch, height, TJPF_RGB, &jpeg, &size, TJSAMP_420, job->quality, 0) != 0) {
    fail(job, "cannot encode the tile", encoder);
    reset(&encoder);
    tjFree(jpeg);
  } else {
    job->jpeg = jpeg;
    job->jpeg_size = size;
  }
  free(pixels);
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result = NULL;
  if (status == napi_ok && job->jpeg) {
    void *copy;
    status = napi_create_buffer_copy(env, job->jpeg_size, job->jpeg, &copy, &result);
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

static napi_value mosaic(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 6) return throw_type(env, "mosaic(tiles, across, tileWidth, tileHeight, denominator, quality)");
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  uint32_t count = 0;
  if (!is_array || napi_get_array_length(env, argv[0], &count) != napi_ok || count < 1 || count > MAX_TILES) {
    return throw_type(env, "tiles must be an array of 1 to 64 Buffers");
  }
  Job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->count = (int)count;
  if (!int_arg(env, argv[1], &job->across) || !int_arg(env, argv[2], &job->tile_width) || !int_arg(env, argv[3], &job->tile_height) ||
      !int_arg(env, argv[4], &job->denominator) || !int_arg(env, argv[5], &job->quality)) {
    free(job);
    return throw_type(env, "across, tileWidth, tileHeight, denominator and quality must be numbers");
  }
  if (job->across < 1 || job->count % job->across != 0 || (job->denominator != 2 && job->denominator != 4 && job->denominator != 8) ||
      job->tile_width < job->denominator || job->tile_height < job->denominator || job->tile_width % job->denominator != 0 ||
      job->tile_height % job->denominator != 0 || job->tile_width > 8192 || job->tile_height > 8192 || job->quality < 1 || job->quality > 100) {
    free(job);
    return throw_type(env, "a mosaic needs whole rows of tiles, a denominator of 2, 4 or 8 that divides the tile size, and a quality of 1-100");
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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "mosaic", NAPI_AUTO_LENGTH, mosaic, NULL, &fn);
  napi_set_named_property(env, exports, "mosaic", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
