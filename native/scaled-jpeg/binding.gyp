{
  "targets": [
    {
      "target_name": "scaled_jpeg",
      "sources": ["src/scaled_jpeg.c"],
      "libraries": ["-lturbojpeg"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11"]
    }
  ]
}
