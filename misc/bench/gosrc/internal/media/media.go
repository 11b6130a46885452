// Package media makes thumbnails and placeholders in PNG, JPEG and GIF.
package media

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
)

// Placeholder is a w×h gradient image.
func Placeholder(w, h int, seed byte) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{R: byte(x) + seed, G: byte(y), B: seed, A: 255})
		}
	}
	return img
}

// Encode renders img as png, jpeg or gif.
func Encode(img image.Image, format string) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	default:
		err = fmt.Errorf("media: unknown format %q", format)
	}
	return buf.Bytes(), err
}

// Feature returns a PNG placeholder seeded by the input's length.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	return Encode(Placeholder(32, 32, byte(len(in))), "png")
}
