/*
 * The part of the TurboJPEG API (libjpeg-turbo's turbojpeg.h, API version 2,
 * which libjpeg-turbo 2.x and 3.x both export) that scaled_jpeg.c calls,
 * declared here so that the addon builds without the distribution's
 * development package: native/build.mjs links it either against the system's
 * libturbojpeg or against the library that the @julusian/jpeg-turbo npm
 * package ships prebuilt.
 *
 * Where the real header is installed it is included as well, so that the
 * compiler checks these declarations against it (a prototype that differs is
 * an error, a constant that differs fails the static assertions).
 */
#ifndef SLIDEBANK_TURBOJPEG_API_H
#define SLIDEBANK_TURBOJPEG_API_H

typedef void *tjhandle;

tjhandle tjInitDecompress(void);
tjhandle tjInitCompress(void);
int tjDestroy(tjhandle handle);
char *tjGetErrorStr2(tjhandle handle);
int tjDecompressHeader3(tjhandle handle, const unsigned char *jpegBuf, unsigned long jpegSize, int *width, int *height, int *jpegSubsamp,
                        int *jpegColorspace);
int tjDecompress2(tjhandle handle, const unsigned char *jpegBuf, unsigned long jpegSize, unsigned char *dstBuf, int width, int pitch, int height,
                  int pixelFormat, int flags);
int tjCompress2(tjhandle handle, const unsigned char *srcBuf, int width, int pitch, int height, int pixelFormat, unsigned char **jpegBuf,
                unsigned long *jpegSize, int jpegSubsamp, int jpegQual, int flags);
void tjFree(unsigned char *buffer);

/* Pixel format RGB, 3 bytes a pixel (TJPF_RGB). */
#define SB_PIXELS_RGB 0
/* 4:2:0 chroma subsampling (TJSAMP_420). */
#define SB_SUBSAMPLING_420 2
/* Fail on a decoder warning instead of going on (TJFLAG_STOPONWARNING). */
#define SB_STOP_ON_WARNING 8192

#if defined(__has_include)
#if __has_include(<turbojpeg.h>)
#include <turbojpeg.h>
_Static_assert(SB_PIXELS_RGB == TJPF_RGB, "TJPF_RGB");
_Static_assert(SB_SUBSAMPLING_420 == TJSAMP_420, "TJSAMP_420");
_Static_assert(SB_STOP_ON_WARNING == TJFLAG_STOPONWARNING, "TJFLAG_STOPONWARNING");
#endif
#endif

#endif
