"""Provides the EHR's views: sign-in, patients, chart, vitals, app launcher, portal, developer launcher."""
