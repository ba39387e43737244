"""REST API v1 for drivers: their profile and their ID tokens."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.generics import RetrieveUpdateAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from stations.models import User
from stations.permissions import IsDriver

from .models import IdToken


class MeSerializer(serializers.ModelSerializer):
    operator = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "phone", "role", "operator"]
        read_only_fields = ["id", "email", "role", "operator"]


class MeView(RetrieveUpdateAPIView):
    """The signed-in user's own profile."""

    serializer_class = MeSerializer
    permission_classes = [IsAuthenticated]

    def get_object(self):
        return self.request.user


class IdTokenSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="effective_status", read_only=True)

    class Meta:
        model = IdToken
        fields = ["id", "token", "type", "label", "status", "expires_at", "created_at"]
        read_only_fields = ["id", "token", "type", "status", "expires_at", "created_at"]


class IdTokenViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """A driver's own RFID cards and app tokens; the driver may rename them."""

    serializer_class = IdTokenSerializer
    permission_classes = [IsDriver]
    http_method_names = ["get", "patch", "head", "options"]
    filterset_fields = ["type", "status"]
    search_fields = ["token", "label"]
    ordering_fields = ["token", "created_at"]
    ordering = ["token"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return IdToken.objects.none()
        return IdToken.objects.filter(driver=self.request.user)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


class AuthTokenView(APIView):
    """An API token for an app: post email and password; delete to sign the app out."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer})
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request, email=data.validated_data["email"], password=data.validated_data["password"]
        )
        if user is None or not user.is_active:
            raise serializers.ValidationError({"non_field_errors": ["Wrong email or password."]})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        if not request.user.is_authenticated:
            return Response({"detail": "Not signed in."}, status=status.HTTP_401_UNAUTHORIZED)
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
