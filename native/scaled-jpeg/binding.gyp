{
  "variables": {
    # Empty: the system's libturbojpeg (its -dev package). Otherwise a folder
    # holding libturbojpeg.so.0, which native/build.mjs copies beside the addon.
    "turbojpeg_dir%": ""
  },
  "targets": [
    {
      "target_name": "scaled_jpeg",
      "sources": ["src/scaled_jpeg.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11"],
      "conditions": [
        ["turbojpeg_dir == ''", {
          "libraries": ["-lturbojpeg"]
        }, {
          "libraries": ["-L<(turbojpeg_dir)", "-l:libturbojpeg.so.0"],
          "ldflags": ["-Wl,-rpath,'$$ORIGIN'"]
        }]
      ]
    }
  ]
}
