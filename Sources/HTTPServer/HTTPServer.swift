// HTTPServer: placeholder until its issue lands; replaced by the module's first file.
