"""The browser UI: views, forms, the prediction display helpers and their URLs."""
