"""People: operator staff (admin, technician) and drivers, in one user model keyed by email."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models


class Role(models.TextChoices):
    OPERATOR_ADMIN = "operator_admin", "Operator admin"
    TECHNICIAN = "technician", "Technician"
    DRIVER = "driver", "Driver"


class EmailUserManager(UserManager):
    def _create_user(self, username, email, password, **extra_fields):
        email = self.normalize_email(email or username)
        user = self.model(email=email, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(None, email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        extra_fields.setdefault("role", Role.OPERATOR_ADMIN)
        return self._create_user(None, email, password, **extra_fields)


class User(AbstractUser):
    """A person who logs in. Operator staff belong to exactly one operator; drivers to none."""

    username = None
    email = models.EmailField("email address", unique=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.DRIVER, db_index=True)
    operator = models.ForeignKey(
        "stations.Operator",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        help_text="The operator whose network this staff member works on. Empty for drivers.",
    )
    phone = models.CharField(max_length=32, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = EmailUserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        if (
            self.role in (Role.OPERATOR_ADMIN, Role.TECHNICIAN)
            and not self.operator_id
            and not self.is_superuser
        ):
            raise ValidationError({"operator": "Operator staff must belong to an operator."})
        if self.role == Role.DRIVER and self.operator_id:
            raise ValidationError({"operator": "Drivers do not belong to an operator."})

    @property
    def is_operator_staff(self) -> bool:
        return self.is_active and (
            self.is_superuser or (self.role in (Role.OPERATOR_ADMIN, Role.TECHNICIAN) and self.operator_id)
        )

    @property
    def is_operator_admin(self) -> bool:
        return self.is_active and (
            self.is_superuser or (self.role == Role.OPERATOR_ADMIN and self.operator_id is not None)
        )

    @property
    def is_driver(self) -> bool:
        return self.is_active and self.role == Role.DRIVER and not self.is_superuser
