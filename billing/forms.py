"""Forms of the billing pages: what a driver or a guest sends, checked before a service sees it."""

from django import forms


class AttachCardForm(forms.Form):
    """The payment method Stripe.js created when it confirmed the SetupIntent."""

    payment_method = forms.RegexField(regex=r"^pm_[A-Za-z0-9_]+$", max_length=64)


class GuestCheckoutForm(forms.Form):
    """A guest at a charger: only an email, where the receipt goes."""

    email = forms.EmailField(label="Email for the receipt", max_length=254)
