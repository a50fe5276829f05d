"""Real-player emulation: a DASH video encoded by ffmpeg, dash.js in headless Chromium, a trace-shaped link."""
