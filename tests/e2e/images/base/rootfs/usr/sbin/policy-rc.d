#!/bin/sh
# Services are never started while packages are installed in an image build.
exit 101
