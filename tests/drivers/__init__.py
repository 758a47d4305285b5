"""Tests of the meter drivers."""
