package webhook

// HasSkipCIMarker reports whether a commit message carries "[skip ci]" or
// "[ci skip]" (any case), the markers that suppress a push's run.
func HasSkipCIMarker(message string) bool {
	return skipCI.MatchString(message)
}
